#include "config/url.h"

#include <catch2/catch.hpp>

using scraperd::config::parse_url;

TEST_CASE("http and https URLs split into origin and target", "[config][url]") {
  auto u = parse_url("http://127.0.0.1:8080/a/b?x=1#frag");
  REQUIRE(u);
  CHECK(u->scheme == "http");
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8080);
  CHECK(u->target == "/a/b?x=1");
  CHECK(u->origin() == "http://127.0.0.1:8080");

  auto s = parse_url("HTTPS://Example.org");
  REQUIRE(s);
  CHECK(s->scheme == "https");
  CHECK(s->port == 443);
  CHECK(s->target == "/");

  CHECK(parse_url("http://example.org/")->target == "/");
  CHECK(parse_url("http://example.org/dir/")->target == "/dir/");

  auto v6 = parse_url("http://[::1]:9000/x");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->origin() == "http://[::1]:9000");
}

TEST_CASE("anything but an absolute http(s) URL is refused", "[config][url]") {
  CHECK_FALSE(parse_url(""));
  CHECK_FALSE(parse_url("example.org"));
  CHECK_FALSE(parse_url("/relative"));
  CHECK_FALSE(parse_url("ftp://example.org/"));
  CHECK_FALSE(parse_url("http://"));
  CHECK_FALSE(parse_url("http://example.org:0/"));
  CHECK_FALSE(parse_url("http://example.org:99999/"));
  CHECK_FALSE(parse_url("http://exa mple.org/"));
}

TEST_CASE("references resolve against a base URL as RFC 3986 says", "[config][url]") {
  using scraperd::config::resolve_url;
  const char* base = "http://a.example/b/c/d;p?q";
  CHECK(resolve_url(base, "g") == "http://a.example/b/c/g");
  CHECK(resolve_url(base, "./g") == "http://a.example/b/c/g");
  CHECK(resolve_url(base, "g/") == "http://a.example/b/c/g/");
  CHECK(resolve_url(base, "/g") == "http://a.example/g");
  CHECK(resolve_url(base, "//g.example/x") == "http://g.example/x");
  CHECK(resolve_url(base, "?y") == "http://a.example/b/c/d;p?y");
  CHECK(resolve_url(base, "g#s") == "http://a.example/b/c/g");
  CHECK(resolve_url(base, "../g") == "http://a.example/b/g");
  CHECK(resolve_url(base, "../../../g") == "http://a.example/g");
  CHECK(resolve_url(base, "https://other.example/") == "https://other.example/");
  CHECK(resolve_url(base, "ftp://files.example/x") == "ftp://files.example/x");
  CHECK_FALSE(resolve_url(base, "http://exa mple/"));
}
