#include "config/schema.h"

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>

#include "config/config.h"

namespace scraperd::config {
namespace {

using json = nlohmann::ordered_json;

// A pattern matching `word` in any case ("get" → "[Gg][Ee][Tt]"): JSON Schema's regular
// expressions (ECMA-262) have no case-insensitive flag.
std::string any_case(std::string_view word) {
  std::string out;
  for (char c : word) {
    auto lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (lower == upper)
      out += c;
    else
      out += std::string("[") + upper + lower + "]";
  }
  return out;
}

json described(json schema, const char* text) {
  schema["description"] = text;
  return schema;
}

json string_type(const char* description) {
  return described({{"type", "string"}}, description);
}

json boolean_type(const char* description) {
  // The loader reads true/false, yes/no, on/off, y/n in any case; YAML 1.2 editors see the
  // words as strings.
  std::string words;
  for (auto w : {"true", "false", "yes", "no", "on", "off", "y", "n"})
    words += (words.empty() ? "" : "|") + any_case(w);
  return described(
      {{"anyOf", {{{"type", "boolean"}}, {{"type", "string"}, {"pattern", "^(" + words + ")$"}}}}},
      description);
}

json integer_type(long long lo, long long hi, const char* description) {
  return described({{"type", "integer"}, {"minimum", lo}, {"maximum", hi}}, description);
}

json enum_type(std::vector<std::string> values, const char* description) {
  return described({{"type", "string"}, {"enum", values}}, description);
}

// A duration greater than zero: 90s, 15m, 1h30m, 2d, 500ms.
json duration_type(const char* description) {
  return described({{"type", "string"}, {"pattern", "^(?=.*[1-9])([0-9]+(ms|s|m|h|d))+$"}},
                   description);
}

json url_type(const char* description) {
  return described({{"type", "string"}, {"pattern", "^" + any_case("http") + "[Ss]?://[^\\s]+$"}},
                   description);
}

json string_list(const char* description) {
  return described(
      {{"anyOf", {{{"type", "string"}}, {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
      description);
}

// Types of keys by "table.key"; "common.key" is a key `defaults` and jobs share.
const std::map<std::string, json>& key_types() {
  static const std::map<std::string, json> types = [] {
    std::map<std::string, json> t;
    // The top level.
    t["top.defaults"] = described({{"$ref", "#/$defs/defaults"}}, "settings every job starts from");
    t["top.jobs"] = described({{"type", {"array", "null"}}, {"items", {{"$ref", "#/$defs/job"}}}},
                              "the jobs, each starting with '- name:'");
    t["top.storage"] = {{"$ref", "#/$defs/storage"}};
    t["top.api"] = {{"$ref", "#/$defs/api"}};
    t["top.log"] = {{"$ref", "#/$defs/log"}};
    t["top.include"] = string_list("more job files: a file, a directory (its *.yaml) or a glob");
    t["top.concurrency"] = integer_type(1, 10000, "fetches in flight at once, across all jobs");
    t["top.shutdown_timeout"] =
        duration_type("how long requests already sent may take to finish on SIGTERM");
    t["storage.path"] = described({{"type", "string"}, {"minLength", 1}}, "the SQLite database");
    t["storage.url"] =
        described({{"type", "string"}, {"pattern", "^postgres(ql)?://"}},
                  "a PostgreSQL database instead of storage.path: postgresql://user@host/db, "
                  "the password from a password file, never written here");
    t["storage.keep"] = duration_type("rows older than this are pruned");
    t["top.cluster"] = described({{"$ref", "#/$defs/cluster"}},
                                 "several daemons on one PostgreSQL database (needs storage.url)");
    t["cluster.lease"] = duration_type("a run's lease; a dead node's runs move after it (30s)");
    t["cluster.heartbeat"] =
        duration_type("how often a node says it is live; under lease / 2 (5s)");
    t["api.listen"] =
        described({{"type", "string"}, {"pattern", "^$|^.+:[0-9]{1,5}$"}},
                  "HOST:PORT of the HTTP API (default 127.0.0.1:9184), \"\" to disable it");
    t["api.token"] = string_type("bearer token the API requires (all paths but /healthz)");
    t["api.token_file"] =
        string_type("a file whose first line is the API token (instead of api.token)");
    t["log.level"] = enum_type({"trace", "debug", "info", "warn", "error"}, "log level");
    t["log.format"] = enum_type({"text", "json"}, "log line format");

    // Keys of a job that `defaults` may set too.
    std::string methods;
    for (auto m : http_methods()) methods += (methods.empty() ? "" : "|") + any_case(m);
    t["common.method"] =
        described({{"type", "string"}, {"pattern", "^(" + methods + ")$"}}, "HTTP method");
    t["common.headers"] =
        described({{"type", "object"},
                   {"propertyNames", {{"pattern", "^[^ :\\r\\n]+$"}}},
                   {"additionalProperties", {{"type", "string"}, {"pattern", "^[^\\r\\n]*$"}}}},
                  "request headers; ${VAR} reads the environment");
    t["common.body"] = string_type("request body (POST, PUT, PATCH)");
    t["common.every"] = duration_type("run every DURATION (e.g. 15m)");
    t["common.cron"] = string_type("cron schedule: minute hour day-of-month month day-of-week");
    t["common.timezone"] = string_type("time zone of 'cron' (e.g. Europe/Paris)");
    t["common.jitter"] =
        described({{"anyOf", {duration_type("a duration"), {{"const", "0"}}, {{"const", 0}}}}},
                  "spread each run's start over up to this much");
    t["common.timeout"] =
        described({{"anyOf", {duration_type("the whole request"), {{"$ref", "#/$defs/timeout"}}}}},
                  "the whole request, or {connect, total}");
    t["common.retries"] = {{"$ref", "#/$defs/retries"}};
    t["common.per_host"] = {{"$ref", "#/$defs/per_host"}};
    t["common.robots"] = enum_type({"obey", "ignore"}, "obey robots.txt (default) or ignore it");
    t["common.max_body"] =
        described({{"anyOf",
                    {{{"type", "integer"}, {"minimum", 1}},
                     {{"type", "string"},
                      {"pattern", "^(?=[0-9]*[1-9])[0-9]+ *(" + any_case("b") + "|[KkMmGg](" +
                                      any_case("ib") + "|[Bb])?)?$"}}}}},
                  "larger bodies are errors of kind too_large (e.g. 512KB, 5MB)");
    t["common.max_redirects"] = integer_type(0, 50, "redirects followed");
    t["common.user_agent"] =
        described({{"type", "string"}, {"pattern", "^[^\\r\\n]*$"}}, "User-Agent header");
    t["common.proxy"] = described(
        {{"type", "string"},
         {"pattern", "^$|^(" + any_case("http") + "[Ss]?|" + any_case("socks5") + "[Hh]?)://"}},
        "proxy URL (http://, https://, socks5://, socks5h://), \"\" for none");
    t["common.tls"] = {{"$ref", "#/$defs/tls"}};
    t["common.cookies"] = boolean_type("keep cookies across the requests of a run");
    t["common.http2"] = boolean_type("offer HTTP/2");
    t["common.follow"] = {{"$ref", "#/$defs/follow"}};
    t["common.extract"] =
        described({{"type", "object"},
                   {"additionalProperties",
                    {{"anyOf", {string_type("a CSS selector"), {{"$ref", "#/$defs/field"}}}}}}},
                  "fields to extract: NAME: CSS selector, or NAME: {css|xpath|json|regex, ...}");
    t["common.store"] = enum_type({"always", "on_change"}, "store every result or changes only");
    t["common.notify"] =
        described({{"anyOf", {url_type("webhook URL"), {{"$ref", "#/$defs/notify"}}}}},
                  "webhook to POST changes and failures to");
    t["common.paused"] = boolean_type("a paused job does not run");
    t["common.namespaces"] =
        described({{"type", "object"}, {"additionalProperties", {{"type", "string"}}}},
                  "XML namespace prefixes for XPath: PREFIX: URI");
    t["common.conditional"] =
        boolean_type("send If-None-Match / If-Modified-Since from the previous response");
    t["job.name"] = described(
        {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}, {"pattern", "^[^\\r\\n\\t]+$"}},
        "the job's unique name");
    t["job.url"] = url_type("the URL to fetch ({1..20} ranges expand)");
    t["job.urls"] = described({{"type", "array"}, {"minItems", 1}, {"items", url_type("a URL")}},
                              "URLs to fetch ({1..20} ranges expand)");

    t["timeout.connect"] = duration_type("connection set-up (DNS, TCP, TLS)");
    t["timeout.total"] = duration_type("the whole request, connect to last byte");
    t["retries.max"] = integer_type(0, 20, "retries after the first attempt");
    t["retries.backoff"] = duration_type("first wait before a retry (doubles)");
    t["retries.max_backoff"] = duration_type("longest wait before a retry");
    t["retries.max_stall"] = duration_type("longest Retry-After obeyed");
    t["retries.on_status"] =
        described({{"type", "array"}, {"items", integer_type(100, 599, "an HTTP status")}},
                  "HTTP statuses that are retried");
    t["per_host.rate"] =
        described({{"anyOf",
                    {{{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1000000}},
                     {{"type", "string"}, {"pattern", "^(?=[0-9.]*[1-9])[0-9.]+(/[smh])?$"}}}}},
                  "requests per host: 2/s, 30/m, 100/h");
    t["per_host.burst"] = integer_type(1, 10000, "requests a host may get at once");
    t["per_host.concurrency"] = integer_type(1, 1000, "requests in flight per host");
    t["per_host.delay"] = duration_type("pause between requests to a host");
    t["follow.css"] = string_type("CSS selector of the links to follow (default a[href])");
    t["follow.xpath"] = string_type("XPath of the links to follow");
    t["follow.same_host"] = boolean_type("follow links to the same host only (default true)");
    t["follow.max_depth"] = integer_type(0, 100, "links from the start URL");
    t["follow.max_pages"] = integer_type(1, 1'000'000, "pages per run");
    t["follow.allow"] = string_list("regexes a followed URL must match");
    t["follow.deny"] = string_list("regexes a followed URL must not match");
    t["field.css"] = string_type("CSS selector");
    t["field.xpath"] = string_type("XPath 1.0 expression");
    t["field.json"] = described({{"type", "string"}, {"pattern", "^(/([^~]|~[01])*)*$"}},
                                "JSON Pointer into a JSON body (e.g. /items/0/price)");
    t["field.regex"] = string_type("regular expression (PCRE2); group 1 if any");
    t["field.attr"] = string_type("take this attribute instead of the text");
    t["field.all"] = boolean_type("every match, as a list");
    t["field.type"] = enum_type({"string", "int", "number", "bool"}, "convert the value");
    t["field.namespaces"] = t["common.namespaces"];
    t["field.required"] = boolean_type("a page where this field matches nothing is an error");
    t["notify.webhook"] = url_type("URL the notifications are POSTed to");
    t["notify.on_change"] = boolean_type("notify when extracted fields change");
    t["notify.failing_streak"] = integer_type(1, 1000, "notify after this many failed runs");
    t["tls.ca_file"] = string_type("PEM file of CA certificates (relative to this file)");
    t["tls.verify"] = boolean_type("check certificates and host names (default true)");
    t["top.render"] = described({{"$ref", "#/$defs/render_pool"}}, "the browser of render jobs");
    t["common.render"] = described(
        {{"anyOf",
          {{{"type", "string"}, {"pattern", "^(http|chromium)$"}}, {{"$ref", "#/$defs/render"}}}}},
        "http (default), chromium, or {browser: chromium, wait_for, ...}");
    t["render.browser"] = described({{"type", "string"}, {"pattern", "^chromium$"}}, "chromium");
    t["render.wait_for"] = described({{"type", "string"}, {"minLength", 1}},
                                     "load (default), network_idle, or a CSS selector");
    t["render.timeout"] = duration_type("the whole page (default: the job's timeout)");
    t["render.block"] = described(
        {{"anyOf",
          {{{"type", "string"}, {"pattern", "^(image|font|media|stylesheet)$"}},
           {{"type", "array"},
            {"items", {{"type", "string"}, {"pattern", "^(image|font|media|stylesheet)$"}}}}}}},
        "resource types not loaded: image, font, media, stylesheet");
    t["render.viewport"] =
        described({{"type", "string"}, {"pattern", "^[0-9]+x[0-9]+$"}}, "WIDTHxHEIGHT (1280x800)");
    t["render.user_agent"] =
        described({{"type", "string"}, {"pattern", "^[^\\r\\n]*$"}}, "the browser's User-Agent");
    t["render.javascript"] = boolean_type("run the page's scripts (default true)");
    t["render.screenshot"] = boolean_type("scraperd try --save also writes a PNG");
    t["render_pool.concurrency"] = integer_type(1, 256, "pages rendered at once (default 2/core)");
    t["render_pool.restart_after"] = integer_type(1, 1'000'000, "pages before a fresh browser");
    t["render_pool.restart_memory"] = described(
        {{"type", "string"},
         {"pattern", "^[0-9]+ *(" + any_case("b") + "|[KkMmGg](" + any_case("ib") + "|[Bb])?)?$"}},
        "a fresh browser once this one's processes hold more (2GB; at least 64MB)");
    t["render_pool.idle_shutdown"] = duration_type("stop an unused browser after this (1m)");
    t["render_pool.executable"] = string_type("the browser (default /usr/bin/chromium)");
    return t;
  }();
  return types;
}

const json* type_of(std::string_view table, std::string_view key) {
  const auto& types = key_types();
  for (std::string_view prefix : {table, std::string_view("common")}) {
    if (prefix == "common" && table != "job" && table != "defaults") break;
    if (auto it = types.find(std::string(prefix) + "." + std::string(key)); it != types.end())
      return &it->second;
  }
  return nullptr;
}

json object_of(const KeyTable& table) {
  json properties = json::object();
  for (auto key : table.keys) {
    const json* type = type_of(table.where, key);
    properties[std::string(key)] = type ? *type : json::object();
  }
  return {{"type", "object"}, {"properties", properties}, {"additionalProperties", false}};
}

json required_any(std::initializer_list<const char*> keys) {
  json any = json::array();
  for (auto k : keys) any.push_back({{"required", {k}}});
  return {{"anyOf", any}};
}

json not_both(const char* a, const char* b) {
  return {{"not", {{"required", {a, b}}}}};
}

}  // namespace

std::string job_schema() {
  json defs = json::object();
  json root;
  for (const auto& table : key_tables()) {
    if (table.where == "included") continue;  // a subset of "top": included files validate too
    json object = object_of(table);
    if (table.where == "top") {
      root = object;
    } else {
      defs[std::string(table.where)] = object;
    }
  }
  defs["defaults"]["allOf"] = {not_both("every", "cron")};
  defs["job"]["required"] = {"name"};
  defs["job"]["allOf"] = {required_any({"url", "urls"}), not_both("url", "urls"),
                          not_both("every", "cron")};
  defs["follow"]["allOf"] = {not_both("css", "xpath")};
  defs["field"]["allOf"] = {required_any({"css", "xpath", "json", "regex"}),
                            not_both("css", "xpath"), not_both("css", "json"),
                            not_both("xpath", "json")};
  defs["field"]["properties"]["attr"]["description"] = "take this attribute (needs css or xpath)";
  defs["notify"]["required"] = {"webhook"};

  json schema = {{"$schema", "https://json-schema.org/draft/2020-12/schema"},
                 {"$id", "file:///usr/share/scraperd/jobs.schema.json"},
                 {"title", "scraperd job file"},
                 {"description", "Jobs for scraperd(1); every key: scraperd.yaml(5)."}};
  schema.update(root);
  schema["$defs"] = defs;
  return schema.dump(2) + "\n";
}

std::vector<std::string> untyped_schema_keys() {
  std::vector<std::string> out;
  for (const auto& table : key_tables()) {
    if (table.where == "included") continue;
    for (auto key : table.keys)
      if (!type_of(table.where, key))
        out.push_back(std::string(table.where) + "." + std::string(key));
  }
  return out;
}

}  // namespace scraperd::config
