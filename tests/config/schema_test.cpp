// The JSON Schema of job files (config/schema.cpp) stays in step with the loader: its keys are
// the loader's key tables, each of those tables is the one the loader checks in that place,
// every key has a type, and every enum lists exactly the values the loader accepts.
// (tests/schema_test.py validates the examples and the bad-file corpus against it.)
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "config/config.h"
#include "config/schema.h"

using nlohmann::json;
namespace config = scraperd::config;

namespace {

// A file with `line` (KEY: VALUE) written in the place named by a key table.
std::string in_place(std::string_view where, const std::string& line) {
  const std::string job = "jobs:\n  - name: a\n    url: http://h.example/\n    every: 1m\n";
  if (where == "top") return line + "\njobs: []\n";
  if (where == "render_pool") return "render:\n  " + line + "\njobs: []\n";
  if (where == "defaults" || where == "storage" || where == "api" || where == "log" ||
      where == "cluster")
    return std::string(where) + ":\n  " + line + "\njobs: []\n";
  if (where == "job") return job + "    " + line + "\n";
  if (where == "field")
    return job + "    extract:\n      f:\n        css: p\n        " + line + "\n";
  return job + "    " + std::string(where) + ":\n      " + line + "\n";
}

std::string errors_of(const std::string& yaml) {
  std::string out;
  for (const auto& d : config::load_string(yaml, "t.yaml").errors) out += d.str() + "\n";
  return out;
}

const json& object_for(const json& schema, std::string_view where) {
  return where == "top" ? schema : schema.at("$defs").at(std::string(where));
}

// JSON Pointers of every "enum" in the schema.
void find_enums(const json& node, const std::string& pointer, std::vector<std::string>& out) {
  if (node.is_object()) {
    if (node.contains("enum")) out.push_back(pointer);
    for (const auto& [k, v] : node.items()) find_enums(v, pointer + "/" + k, out);
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i)
      find_enums(node[i], pointer + "/" + std::to_string(i), out);
  }
}

}  // namespace

TEST_CASE("the schema lists the keys of the loader's tables, each with a type",
          "[config][schema]") {
  json schema = json::parse(config::job_schema());
  CHECK(schema.at("$schema") == "https://json-schema.org/draft/2020-12/schema");
  CHECK(config::untyped_schema_keys() == std::vector<std::string>{});
  for (const auto& table : config::key_tables()) {
    INFO("table " << table.where);
    std::set<std::string> keys(table.keys.begin(), table.keys.end());
    if (table.where == "included") {
      // Included files validate against the main schema: their keys are top-level keys.
      for (const auto& k : keys) CHECK(schema.at("properties").contains(k));
      continue;
    }
    const json& object = object_for(schema, table.where);
    std::set<std::string> listed;
    for (const auto& [k, v] : object.at("properties").items()) listed.insert(k);
    CHECK(listed == keys);
    CHECK(object.at("additionalProperties") == false);
  }
}

TEST_CASE("each key table is the one the loader checks in its place", "[config][schema]") {
  for (const auto& table : config::key_tables()) {
    if (table.where == "included") continue;
    INFO("table " << table.where);
    for (auto key : table.keys) {
      std::string k(key);
      INFO("key " << k);
      CHECK(errors_of(in_place(table.where, k + ": zzz")).find("unknown key '" + k + "'") ==
            std::string::npos);
    }
    CHECK(errors_of(in_place(table.where, "zz_not_a_key: 1")).find("unknown key 'zz_not_a_key'") !=
          std::string::npos);
  }
}

TEST_CASE("every enum in the schema is what the loader accepts", "[config][schema]") {
  json schema = json::parse(config::job_schema());
  // Where to write a value for each enum the schema has; a new enum needs a line here.
  const std::map<std::string, std::pair<std::string, std::string>> probes = {
      {"/$defs/log/properties/level", {"log", "level"}},
      {"/$defs/log/properties/format", {"log", "format"}},
      {"/$defs/defaults/properties/robots", {"defaults", "robots"}},
      {"/$defs/defaults/properties/store", {"defaults", "store"}},
      {"/$defs/job/properties/robots", {"job", "robots"}},
      {"/$defs/job/properties/store", {"job", "store"}},
      {"/$defs/field/properties/type", {"field", "type"}},
  };
  std::vector<std::string> enums;
  find_enums(schema, "", enums);
  CHECK(enums.size() >= 5);
  for (const auto& pointer : enums) {
    INFO("enum at " << pointer);
    auto probe = probes.find(pointer);
    REQUIRE(probe != probes.end());
    const auto& [where, key] = probe->second;
    std::set<std::string> listed = schema.at(json::json_pointer(pointer)).at("enum");
    for (const auto& value : listed) {
      INFO("value " << value);
      CHECK(errors_of(in_place(where, key + ": " + value)).find("must be one of") ==
            std::string::npos);
    }
    // The loader's message lists what it accepts: "... must be one of a, b, not 'zzz'".
    std::string errors = errors_of(in_place(where, key + ": zzz"));
    auto from = errors.find("must be one of ");
    auto to = errors.find(", not 'zzz'");
    REQUIRE(from != std::string::npos);
    REQUIRE(to != std::string::npos);
    std::set<std::string> accepted;
    std::string list = errors.substr(from + 15, to - from - 15) + ", ";
    for (std::size_t at = 0, comma; (comma = list.find(", ", at)) != std::string::npos;
         at = comma + 2)
      accepted.insert(list.substr(at, comma - at));
    CHECK(listed == accepted);
  }
}

TEST_CASE("the schema's methods are the loader's, in any case", "[config][schema]") {
  std::string message = errors_of(in_place("job", "method: FETCH"));
  std::string list;
  auto methods = config::http_methods();
  for (std::size_t i = 0; i < methods.size(); ++i)
    list += (i == 0 ? "" : i + 1 == methods.size() ? " or " : ", ") + std::string(methods[i]);
  CHECK(message.find("'method' must be " + list + ", not 'FETCH'") != std::string::npos);
  for (auto m : methods) {
    std::string lower(m);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(errors_of(in_place("job", "method: " + lower)).find("'method'") == std::string::npos);
  }
}
