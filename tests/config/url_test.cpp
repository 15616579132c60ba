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
