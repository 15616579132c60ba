// `log.format: json`: every log line one JSON object, for log shippers.
//
//   {"time":"2026-12-03T10:15:00.123Z","level":"info","message":"job 'shop': 20 URLs: ..."}
//
// Under journald the "<N>" priority prefix stays in front (journald strips it and keeps the
// JSON as the message); journald adds its own time, but the field is kept for one format.
#pragma once

namespace scraperd::daemon {

// Switches the default logger to JSON lines. `journal`: prefix each line with "<N>".
void use_json_log_format(bool journal);

}  // namespace scraperd::daemon
