// Private to storage/: the PostgreSQL side of store.h and writer.h. The public functions
// of store.h dispatch here when their locator is a postgresql:// URL (is_postgres).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace scraperd::storage {

struct RunIds;
class Backend;

namespace pg {

class Conn;

// Creates the tables if needed and migrates them forward to `version` (default: current),
// in one transaction under an advisory lock (several daemons may start at once). The
// version lives in the table schema_version (one row).
void migrate(const std::string& url, std::int64_t version = -1);
// The schema version of the database at `url` (0: none yet).
std::int64_t version(const std::string& url);

// Runs left `running` by a process that was killed are closed as interrupted (not those of
// jobs another node of a cluster holds a live lease on: storage/cluster.h).
void close_interrupted_runs(const std::string& url);

// The writer's backend on PostgreSQL (backend.h).
std::unique_ptr<Backend> open_backend(const std::string& url, RunIds& runs);

std::map<std::string, Clock::time_point> next_due_times(const std::string& url);
std::map<std::string, int> failing_streaks(const std::string& url);
void for_each_url_state(const std::string& url, const std::function<void(const UrlState&)>& each);
// One url_state row on an open connection (UrlStateReader), or nullopt.
std::optional<UrlState> read_url_state(Conn& c, const std::string& job, const std::string& url);
std::map<std::string, Clock::time_point> paused_jobs(const std::string& url);
bool set_paused(const std::string& url, const std::string& job, bool paused, Clock::time_point at);
bool job_known(const std::string& url, const std::string& job);

// store.cpp's queries on PostgreSQL: `sql` with SQLite's `?` placeholders (numbered $1, $2,
// ... here); timestamptz cells come back in format_time's text, as SQLite's.
Table run_query(const std::string& url, const std::string& sql, const std::vector<Cell>& params);
void for_each_field_value(const std::string& url, const Filter& filter,
                          const std::function<void(const FieldValue&)>& each);

}  // namespace pg
}  // namespace scraperd::storage
