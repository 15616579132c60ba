// storage::Writer's backend on PostgreSQL: one transaction per batch; results and errors go
// in by COPY (text format), the runs' rows one statement each (a RunStarted's id comes back
// with RETURNING), url_state as one multi-row upsert per batch (the last state of a URL wins).
#include <charconv>
#include <cstdio>
#include <map>
#include <random>

#include "storage/backend.h"
#include "storage/pg.h"
#include "storage/pg_store.h"

namespace scraperd::storage::pg {
namespace {

void field(std::string& line, std::string_view v) {
  if (!line.empty() && line.back() != '\n') line += '\t';
  copy_text(line, v);
}
void field_null(std::string& line) {
  if (!line.empty() && line.back() != '\n') line += '\t';
  line += "\\N";
}
template <typename T>
void field_number(std::string& line, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  field(line, std::string_view(buf, static_cast<std::size_t>(end - buf)));
}
void field_text_or_null(std::string& line, const std::string& v) {
  if (v.empty())
    field_null(line);
  else
    field(line, v);
}
void field_run(std::string& line, std::optional<std::int64_t> id) {
  if (id)
    field_number(line, *id);
  else
    field_null(line);
}

Param text_or_null(const std::string& v) {
  return v.empty() ? Param{} : Param{v};
}

class PgBackend : public Backend {
 public:
  PgBackend(const std::string& url, RunIds& runs) : runs_(runs), conn_(url) {
    // Tokens are looked up only right after a reconnection: an hour of them is plenty.
    conn_.exec("DELETE FROM writer_commits WHERE at < now() - interval '1 hour'");
  }

  void commit(const std::vector<Row>& batch) override {
    std::size_t skip = settle_unsure();
    if (skip >= batch.size()) return;
    runs_.begin();
    results_.clear();
    errors_.clear();
    states_.clear();
    std::string token = new_token();
    bool committing = false;
    try {
      conn_.exec("BEGIN");
      for (auto it = batch.begin() + static_cast<std::ptrdiff_t>(skip); it != batch.end(); ++it)
        std::visit([this](const auto& r) { add(r); }, *it);
      if (!results_.empty())
        conn_.copy(
            "results (run_id, job, url, final_url, status, bytes, elapsed_ms, fetched_at, "
            "content_hash, changed, data)",
            results_);
      if (!errors_.empty())
        conn_.copy(
            "errors (run_id, job, url, attempt, kind, status, message, elapsed_ms, fetched_at)",
            errors_);
      write_url_states();
      conn_.query("INSERT INTO writer_commits (token) VALUES ($1)", {token});
      committing = true;
      conn_.exec("COMMIT");
    } catch (...) {
      if (committing && PQstatus(conn_.get()) != CONNECTION_OK) {
        // The server may have committed before the connection went: settled on reconnection.
        runs_.unsure = RunIds::Unsure{token, batch.size(), runs_.added, runs_.finished};
        throw;
      }
      conn_.rollback();
      runs_.rolled_back();
      throw;
    }
    runs_.committed();
  }

  int prune(Clock::time_point cutoff, int limit) override {
    static constexpr const char* kSteps[] = {
        "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE fetched_at < $1 LIMIT $2)",
        "DELETE FROM errors WHERE id IN (SELECT id FROM errors WHERE fetched_at < $1 LIMIT $2)",
        "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE started_at < $1 AND status <> "
        "'running' AND NOT EXISTS (SELECT 1 FROM results WHERE run_id = runs.id) AND NOT EXISTS "
        "(SELECT 1 FROM errors WHERE run_id = runs.id) LIMIT $2)",
    };
    for (const char* sql : kSteps) {
      auto r = conn_.query(sql, {time_param(cutoff), std::to_string(limit)});
      if (int n = std::atoi(PQcmdTuples(r.get())); n > 0) return n;
    }
    return 0;  // autovacuum gives the space back to the tables
  }

 private:
  // After a lost COMMIT: how many rows at the head of the batch are in the database already
  // (all of that batch, or none; its run ids kept or forgotten accordingly).
  std::size_t settle_unsure() {
    if (!runs_.unsure) return 0;
    auto r = conn_.query("SELECT 1 FROM writer_commits WHERE token = $1", {runs_.unsure->token});
    RunIds::Unsure unsure = std::move(*runs_.unsure);
    runs_.unsure.reset();
    runs_.added = std::move(unsure.added);
    runs_.finished = std::move(unsure.finished);
    if (PQntuples(r.get()) == 0) {
      runs_.rolled_back();
      return 0;
    }
    runs_.committed();
    return unsure.rows;
  }

  std::string new_token() {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(random()),
                  static_cast<unsigned long long>(random()));
    return buf;
  }

  void add(const ResultRow& r) {
    auto& l = results_;
    field_run(l, runs_.ref(r.run_id));
    field(l, r.job);
    field(l, r.url);
    field_text_or_null(l, r.final_url == r.url ? std::string() : r.final_url);
    field_number(l, r.status);
    field_number(l, r.bytes);
    field_number(l, r.elapsed_ms);
    field(l, time_param(r.fetched_at));
    field_text_or_null(l, r.content_hash);
    if (r.changed)
      field(l, *r.changed ? "1" : "0");
    else
      field_null(l);
    field_text_or_null(l, r.data);
    l += '\n';
  }
  void add(const ErrorRow& r) {
    auto& l = errors_;
    field_run(l, runs_.ref(r.run_id));
    field(l, r.job);
    field(l, r.url);
    field_number(l, r.attempt);
    field(l, r.kind);
    if (r.status)
      field_number(l, *r.status);
    else
      field_null(l);
    field(l, r.message);
    field_number(l, r.elapsed_ms);
    field(l, time_param(r.fetched_at));
    l += '\n';
  }
  void add(const RunStarted& r) {
    auto res = conn_.query(
        "INSERT INTO runs (job, due_at, started_at, status, urls) "
        "VALUES ($1, $2, $3, 'running', $4) RETURNING id",
        {r.job, time_param(r.due_at), time_param(r.started_at), std::to_string(r.urls)});
    runs_.ids[r.key] = std::atoll(PQgetvalue(res.get(), 0, 0));
    runs_.added.push_back(r.key);
  }
  void add(const RunFinished& r) {
    auto id = runs_.ref(r.key);
    conn_.query(
        "UPDATE runs SET finished_at = $1, status = $2, ok = $3, failed = $4, "
        "urls = coalesce(nullif($5::integer, 0), urls) WHERE id = $6",
        {time_param(r.finished_at), r.status, std::to_string(r.ok), std::to_string(r.failed),
         std::to_string(r.urls), id ? Param(std::to_string(*id)) : Param()});
    runs_.finished.push_back(r.key);
  }
  void add(const RunProgress& r) {
    if (auto id = runs_.ref(r.key))
      conn_.query(
          "UPDATE runs SET ok = $1, failed = $2, urls = greatest(urls, $3::integer) "
          "WHERE id = $4 AND status = 'running'",
          {std::to_string(r.ok), std::to_string(r.failed), std::to_string(r.urls),
           std::to_string(*id)});
  }
  void add(const RunSkipped& r) {
    conn_.query(
        "INSERT INTO runs (job, due_at, started_at, finished_at, status) "
        "VALUES ($1, $2, $2, $2, 'skipped')",
        {r.job, time_param(r.due_at)});
  }
  void add(const JobDue& r) {
    conn_.query("UPDATE jobs SET next_due = $1 WHERE name = $2", {time_param(r.next_due), r.name});
  }
  void add(const JobSeen& r) {
    conn_.query(
        "INSERT INTO jobs (name, schedule, urls, first_seen, last_seen) "
        "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET "
        "schedule = excluded.schedule, urls = excluded.urls, last_seen = excluded.last_seen",
        {r.name, r.schedule, std::to_string(r.urls), time_param(r.seen_at)});
  }
  void add(const UrlState& r) { states_[{r.job, r.url}] = &r; }

  // One upsert for up to 1,000 URLs (7 parameters each: under the protocol's 65,535).
  void write_url_states() {
    auto it = states_.begin();
    while (it != states_.end()) {
      std::string sql =
          "INSERT INTO url_state (job, url, etag, last_modified, content_hash, data, links) "
          "VALUES ";
      std::vector<Param> params;
      for (int n = 0; it != states_.end() && n < 1000; ++it, ++n) {
        const UrlState& s = *it->second;
        auto at = params.size();
        sql += n ? ", (" : "(";
        for (int i = 1; i <= 7; ++i)
          sql += "$" + std::to_string(at + static_cast<std::size_t>(i)) + (i < 7 ? ", " : ")");
        params.insert(params.end(),
                      {s.job, s.url, text_or_null(s.etag), text_or_null(s.last_modified),
                       text_or_null(s.content_hash), text_or_null(s.data), text_or_null(s.links)});
      }
      sql +=
          " ON CONFLICT (job, url) DO UPDATE SET etag = excluded.etag, last_modified = "
          "excluded.last_modified, content_hash = excluded.content_hash, data = excluded.data, "
          "links = excluded.links";
      conn_.query(sql, params);
    }
  }

  RunIds& runs_;
  Conn conn_;
  std::string results_, errors_;  // COPY text of the batch's rows
  std::map<std::pair<std::string, std::string>, const UrlState*> states_;
};

}  // namespace

std::unique_ptr<Backend> open_backend(const std::string& url, RunIds& runs) {
  return std::make_unique<PgBackend>(url, runs);
}

}  // namespace scraperd::storage::pg
