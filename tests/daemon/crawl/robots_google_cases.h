// Google's robots.txt test suite (github.com/google/robotstxt, robots_test.cc) as data: every
// IsUserAgentAllowed() expectation of it, in file order, grouped by the TEST it comes from
// (ID_*: the RFC 9309 tests; GoogleOnly_*: Google's own behaviour). `google` is what that file
// expects; `differs` names a case where scraperd answers the opposite on purpose, and why
// (each is listed in docs/configuration.md, "robots.txt").
#pragma once

#include <string>
#include <vector>

namespace scraperd::test {

struct GoogleExpect {
  std::string agent;  // what Google's test passes as the crawler's user agent
  std::string url;
  bool google;                    // Google's expectation: allowed?
  const char* differs = nullptr;  // non-null: scraperd answers !google, for this reason
};

struct GoogleBlock {
  const char* test;  // the TEST in robots_test.cc
  std::string robots;
  std::vector<GoogleExpect> expects;
};

inline constexpr const char* kDiffersToken =
    "scraperd matches on the product token of its User-Agent header ('Foo' of 'Foo Bar'); "
    "Google's API takes a bare token and finds none in 'Foo Bar'";
inline constexpr const char* kDiffersUnreserved =
    "RFC 9309 2.2.2 (its example table): a percent-encoded unreserved character is decoded "
    "before comparison, so /foo/bar/%62%61%7A matches /foo/bar/baz";

inline std::vector<GoogleBlock> google_cases() {
  const std::string foo_disallow = "user-agent: FooBot\ndisallow: /\n";
  const std::string xy = "http://foo.bar/x/y";
  const std::string page = "http://foo.bar/x/page.html";
  std::vector<GoogleBlock> b = {
      {"GoogleOnly_SystemTest", "", {{"FooBot", "", true}}},
      {"GoogleOnly_SystemTest", foo_disallow, {{"", "", true}, {"FooBot", "", false}}},
      {"GoogleOnly_SystemTest", "", {{"", "", true}}},

      {"ID_LineSyntax_Line", "user-agent: FooBot\ndisallow: /\n", {{"FooBot", xy, false}}},
      {"ID_LineSyntax_Line", "foo: FooBot\nbar: /\n", {{"FooBot", xy, true}}},
      {"ID_LineSyntax_Line", "user-agent FooBot\ndisallow /\n", {{"FooBot", xy, false}}},

      {"ID_LineSyntax_Groups",
       "allow: /foo/bar/\n"
       "\n"
       "user-agent: FooBot\n"
       "disallow: /\n"
       "allow: /x/\n"
       "user-agent: BarBot\n"
       "disallow: /\n"
       "allow: /y/\n"
       "\n"
       "\n"
       "allow: /w/\n"
       "user-agent: BazBot\n"
       "\n"
       "user-agent: FooBot\n"
       "allow: /z/\n"
       "disallow: /\n",
       {{"FooBot", "http://foo.bar/x/b", true},
        {"FooBot", "http://foo.bar/z/d", true},
        {"FooBot", "http://foo.bar/y/c", false},
        {"BarBot", "http://foo.bar/y/c", true},
        {"BarBot", "http://foo.bar/w/a", true},
        {"BarBot", "http://foo.bar/z/d", false},
        {"BazBot", "http://foo.bar/z/d", true},
        {"FooBot", "http://foo.bar/foo/bar/", false},
        {"BarBot", "http://foo.bar/foo/bar/", false},
        {"BazBot", "http://foo.bar/foo/bar/", false}}},

      {"ID_LineSyntax_Groups_OtherRules",
       "User-agent: BarBot\n"
       "Sitemap: https://foo.bar/sitemap\n"
       "User-agent: *\n"
       "Disallow: /\n",
       {{"FooBot", "http://foo.bar/", false}, {"BarBot", "http://foo.bar/", false}}},
      {"ID_LineSyntax_Groups_OtherRules",
       "User-agent: FooBot\n"
       "Invalid-Unknown-Line: unknown\n"
       "User-agent: *\n"
       "Disallow: /\n",
       {{"FooBot", "http://foo.bar/", false}, {"BarBot", "http://foo.bar/", false}}},

      {"ID_REPLineNamesCaseInsensitive",
       "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n",
       {{"FooBot", xy, true}, {"FooBot", "http://foo.bar/a/b", false}}},
      {"ID_REPLineNamesCaseInsensitive",
       "user-agent: FooBot\nallow: /x/\ndisallow: /\n",
       {{"FooBot", xy, true}, {"FooBot", "http://foo.bar/a/b", false}}},
      {"ID_REPLineNamesCaseInsensitive",
       "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n",
       {{"FooBot", xy, true}, {"FooBot", "http://foo.bar/a/b", false}}},
  };
  for (const char* body : {"User-Agent: FOO BAR\nAllow: /x/\nDisallow: /\n",
                           "User-Agent: foo bar\nAllow: /x/\nDisallow: /\n",
                           "User-Agent: FoO bAr\nAllow: /x/\nDisallow: /\n"})
    b.push_back({"ID_UserAgentValueCaseInsensitive",
                 body,
                 {{"Foo", xy, true},
                  {"Foo", "http://foo.bar/a/b", false},
                  {"foo", xy, true},
                  {"foo", "http://foo.bar/a/b", false}}});
  std::vector<GoogleBlock> more = {
      {"GoogleOnly_AcceptUserAgentUpToFirstSpace",
       "User-Agent: *\n"
       "Disallow: /\n"
       "User-Agent: Foo Bar\n"
       "Allow: /x/\n"
       "Disallow: /\n",
       {{"Foo", xy, true}, {"Foo Bar", xy, false, kDiffersToken}}},

      {"ID_GlobalGroups_Secondary", "", {{"FooBot", xy, true}}},
      {"ID_GlobalGroups_Secondary",
       "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n",
       {{"FooBot", xy, false}, {"BarBot", xy, true}}},
      {"ID_GlobalGroups_Secondary",
       "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\n"
       "user-agent: BazBot\ndisallow: /\n",
       {{"QuxBot", xy, true}}},

      {"ID_AllowDisallow_Value_CaseSensitive",
       "user-agent: FooBot\ndisallow: /x/\n",
       {{"FooBot", xy, false}}},
      {"ID_AllowDisallow_Value_CaseSensitive",
       "user-agent: FooBot\ndisallow: /X/\n",
       {{"FooBot", xy, true}}},

      {"ID_LongestMatch",
       "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n",
       {{"FooBot", page, false}}},
      {"ID_LongestMatch",
       "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n",
       {{"FooBot", page, true}, {"FooBot", "http://foo.bar/x/", false}}},
      {"ID_LongestMatch", "user-agent: FooBot\ndisallow: \nallow: \n", {{"FooBot", page, true}}},
      {"ID_LongestMatch", "user-agent: FooBot\ndisallow: /\nallow: /\n", {{"FooBot", page, true}}},
      {"ID_LongestMatch",
       "user-agent: FooBot\ndisallow: /x\nallow: /x/\n",
       {{"FooBot", "http://foo.bar/x", false}, {"FooBot", "http://foo.bar/x/", true}}},
      {"ID_LongestMatch",
       "user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n",
       {{"FooBot", page, true}}},
      {"ID_LongestMatch",
       "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n",
       {{"FooBot", "http://foo.bar/page.html", false}, {"FooBot", "http://foo.bar/page", true}}},
      {"ID_LongestMatch",
       "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n",
       {{"FooBot", page, true}, {"FooBot", "http://foo.bar/x/y.html", false}}},
      {"ID_LongestMatch",
       "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n",
       {{"FooBot", "http://foo.bar/x/page", true}, {"FooBot", "http://foo.bar/y/page", false}}},

      {"ID_Encoding",
       "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n",
       {{"FooBot", "http://foo.bar/foo/bar?qux=taz&baz=http://foo.bar?tar&par", true}}},
      {"ID_Encoding",
       "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/\xE3\x83\x84\n",
       {{"FooBot", "http://foo.bar/foo/bar/%E3%83%84", true},
        {"FooBot", "http://foo.bar/foo/bar/\xE3\x83\x84", false}}},
      {"ID_Encoding",
       "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n",
       {{"FooBot", "http://foo.bar/foo/bar/%E3%83%84", true},
        {"FooBot", "http://foo.bar/foo/bar/\xE3\x83\x84", false}}},
      {"ID_Encoding",
       "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n",
       {{"FooBot", "http://foo.bar/foo/bar/baz", false, kDiffersUnreserved},
        {"FooBot", "http://foo.bar/foo/bar/%62%61%7A", true}}},

      {"ID_SpecialCharacters",
       "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n",
       {{"FooBot", "http://foo.bar/foo/bar/quz", false},
        {"FooBot", "http://foo.bar/foo/quz", true},
        {"FooBot", "http://foo.bar/foo//quz", true},
        {"FooBot", "http://foo.bar/foo/bax/quz", true}}},
      {"ID_SpecialCharacters",
       "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n",
       {{"FooBot", "http://foo.bar/foo/bar", false},
        {"FooBot", "http://foo.bar/foo/bar/qux", true},
        {"FooBot", "http://foo.bar/foo/bar/", true},
        {"FooBot", "http://foo.bar/foo/bar/baz", true}}},
      {"ID_SpecialCharacters",
       "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n",
       {{"FooBot", "http://foo.bar/foo/bar", true}, {"FooBot", "http://foo.bar/foo/quz", false}}},

      {"GoogleOnly_IndexHTMLisDirectory",
       "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n",
       {{"foobot", "http://foo.com/allowed-slash/", true},
        {"foobot", "http://foo.com/allowed-slash/index.htm", false},
        {"foobot", "http://foo.com/allowed-slash/index.html", true},
        {"foobot", "http://foo.com/anyother-url", false}}},
  };
  b.insert(b.end(), more.begin(), more.end());

  // GoogleOnly_LineTooLong: lines are cut after 8 * 2083 bytes, their end included.
  const std::size_t max_line = 2083 * 8, eol = 1;
  {
    std::string longline = "/x/";
    const std::size_t max_length =
        max_line - longline.size() - std::string("disallow: ").size() + eol;
    while (longline.size() < max_length) longline += "a";
    b.push_back({"GoogleOnly_LineTooLong",
                 "user-agent: FooBot\ndisallow: " + longline + "/qux\n",
                 {{"FooBot", "http://foo.bar/fux", true},
                  {"FooBot", "http://foo.bar" + longline + "/fux", false}}});
  }
  {
    std::string longline_a = "/x/", longline_b = "/x/";
    const std::size_t max_length =
        max_line - longline_a.size() - std::string("allow: ").size() + eol;
    while (longline_a.size() < max_length) {
      longline_a += "a";
      longline_b += "b";
    }
    b.push_back({"GoogleOnly_LineTooLong",
                 "user-agent: FooBot\ndisallow: /\nallow: " + longline_a +
                     "/qux\nallow: " + longline_b + "/qux\n",
                 {{"FooBot", "http://foo.bar/", false},
                  {"FooBot", "http://foo.bar" + longline_a + "/qux", true},
                  {"FooBot", "http://foo.bar" + longline_b + "/fux", true}}});
  }

  // GoogleOnly_DocumentationChecks: the examples of Google's robots.txt documentation.
  auto doc = [&](const std::string& allow, std::vector<GoogleExpect> expects) {
    b.push_back({"GoogleOnly_DocumentationChecks",
                 "user-agent: FooBot\ndisallow: /\nallow: " + allow + "\n", std::move(expects)});
  };
  auto at = [](const std::string& path, bool allowed) {
    return GoogleExpect{"FooBot", "http://foo.bar" + path, allowed};
  };
  doc("/fish", {at("/bar", false), at("/fish", true), at("/fish.html", true),
                at("/fish/salmon.html", true), at("/fishheads", true),
                at("/fishheads/yummy.html", true), at("/fish.html?id=anything", true),
                at("/Fish.asp", false), at("/catfish", false), at("/?id=fish", false)});
  doc("/fish*", {at("/bar", false), at("/fish", true), at("/fish.html", true),
                 at("/fish/salmon.html", true), at("/fishheads", true),
                 at("/fishheads/yummy.html", true), at("/fish.html?id=anything", true),
                 at("/Fish.bar", false), at("/catfish", false), at("/?id=fish", false)});
  doc("/fish/",
      {at("/bar", false), at("/fish/", true), at("/fish/salmon", true), at("/fish/?salmon", true),
       at("/fish/salmon.html", true), at("/fish/?id=anything", true), at("/fish", false),
       at("/fish.html", false), at("/Fish/Salmon.html", false)});
  doc("/*.php",
      {at("/bar", false), at("/filename.php", true), at("/folder/filename.php", true),
       at("/folder/filename.php?parameters", true), at("//folder/any.php.file.html", true),
       at("/filename.php/", true), at("/index?f=filename.php/", true), at("/php/", false),
       at("/index?php", false), at("/windows.PHP", false)});
  doc("/*.php$", {at("/bar", false), at("/filename.php", true), at("/folder/filename.php", true),
                  at("/filename.php?parameters", false), at("/filename.php/", false),
                  at("/filename.php5", false), at("/php/", false), at("/filename?php", false),
                  at("/aaaphpaaa", false), at("//windows.PHP", false)});
  doc("/fish*.php", {at("/bar", false), at("/fish.php", true),
                     at("/fishheads/catfish.php?parameters", true), at("/Fish.PHP", false)});
  // Section "Order of precedence for group-member records".
  std::vector<GoogleBlock> order = {
      {"GoogleOnly_DocumentationChecks",
       "user-agent: FooBot\nallow: /p\ndisallow: /\n",
       {{"FooBot", "http://example.com/page", true}}},
      {"GoogleOnly_DocumentationChecks",
       "user-agent: FooBot\nallow: /folder\ndisallow: /folder\n",
       {{"FooBot", "http://example.com/folder/page", true}}},
      {"GoogleOnly_DocumentationChecks",
       "user-agent: FooBot\nallow: /page\ndisallow: /*.htm\n",
       {{"FooBot", "http://example.com/page.htm", false}}},
      {"GoogleOnly_DocumentationChecks",
       "user-agent: FooBot\nallow: /$\ndisallow: /\n",
       {{"FooBot", "http://example.com/", true},
        {"FooBot", "http://example.com/page.html", false}}},
  };
  b.insert(b.end(), order.begin(), order.end());
  return b;
}

// ID_LinesNumbersAreCountedCorrectly and ID_UTF8ByteOrderMarkIsSkipped: what the parser
// reports for a file (Google's RobotsParseHandler counts; `last_line` -1: not checked).
struct GoogleParseCase {
  const char* name;
  std::string robots;
  int directives;  // user-agent, allow, disallow, sitemap lines, whether in a group or not
  int unknown;
  int last_line;
};

inline std::vector<GoogleParseCase> google_parse_cases() {
  return {
      {"ID_LinesNumbersAreCountedCorrectly: unix",
       "User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\nDisallow: /\n", 4, 0, 6},
      {"ID_LinesNumbersAreCountedCorrectly: dos",
       "User-Agent: foo\r\nAllow: /some/path\r\nUser-Agent: bar\r\n\r\n\r\nDisallow: /\r\n", 4, 0,
       6},
      {"ID_LinesNumbersAreCountedCorrectly: mac",
       "User-Agent: foo\rAllow: /some/path\rUser-Agent: bar\r\r\rDisallow: /\r", 4, 0, 6},
      {"ID_LinesNumbersAreCountedCorrectly: no final newline",
       "User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\nDisallow: /", 4, 0, 6},
      {"ID_LinesNumbersAreCountedCorrectly: mixed",
       "User-Agent: foo\nAllow: /some/path\r\nUser-Agent: bar\n\r\n\nDisallow: /", 4, 0, 6},
      {"ID_UTF8ByteOrderMarkIsSkipped: full BOM", "\xEF\xBB\xBFUser-Agent: foo\nAllow: /AnyValue\n",
       2, 0, -1},
      {"ID_UTF8ByteOrderMarkIsSkipped: partial BOM, 2 bytes",
       "\xEF\xBBUser-Agent: foo\nAllow: /AnyValue\n", 2, 0, -1},
      {"ID_UTF8ByteOrderMarkIsSkipped: partial BOM, 1 byte",
       "\xEF"
       "User-Agent: foo\nAllow: /AnyValue\n",
       2, 0, -1},
      {"ID_UTF8ByteOrderMarkIsSkipped: broken BOM",
       "\xEF\x11\xBFUser-Agent: foo\nAllow: /AnyValue\n", 1, 1, -1},
      {"ID_UTF8ByteOrderMarkIsSkipped: BOM in the middle of the file",
       "User-Agent: foo\n\xEF\xBB\xBF"
       "Allow: /AnyValue\n",
       1, 1, -1},
  };
}

// ID_VerifyValidUserAgentsToObey: Google's IsValidUserAgentToObey().
struct GoogleTokenCase {
  std::string agent;
  bool valid;
};

inline std::vector<GoogleTokenCase> google_token_cases() {
  return {{"Foobot", true},      {"Foobot-Bar", true},    {"Foo_Bar", true},  {"", false},
          {"", false},           {"\xE3\x83\x84", false}, {"Foobot*", false}, {" Foobot ", false},
          {"Foobot/2.1", false}, {"Foobot Bar", false}};
}

}  // namespace scraperd::test
