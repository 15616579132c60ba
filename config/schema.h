// The JSON Schema (draft 2020-12) of job files, for editors (yaml-language-server) and
// validators: `scraperd schema` prints it, packages ship it as
// /usr/share/scraperd/jobs.schema.json.
//
// Its keys come from the loader's own key tables (config::key_tables()), so a key the loader
// accepts is a key the schema lists; the type of each key is written here, and
// tests/config/schema_test.cpp checks that every key has one and that every enum the schema
// lists is exactly what the loader accepts.
#pragma once

#include <string>
#include <vector>

namespace scraperd::config {

// The schema, as indented JSON text.
std::string job_schema();

// "table.key" for each key of the loader's tables that has no type here (the schema then
// accepts any value for it); the tests require this to be empty.
std::vector<std::string> untyped_schema_keys();

}  // namespace scraperd::config
