// The daemon's side of systemd: sd_notify state changes, the watchdog, the journal.
//
//   systemd::ready("12 jobs");       // READY=1, once config and database are up
//   systemd::reloading();            // RELOADING=1 + MONOTONIC_USEC, then ready() again
//   systemd::stopping();             // STOPPING=1
//   if (auto every = systemd::watchdog_interval(); every.count()) ... systemd::watchdog();
//
// Outside systemd (no NOTIFY_SOCKET) every call does nothing. Thread-safe.
#pragma once

#include <chrono>
#include <string_view>

namespace scraperd::daemon::systemd {

void ready(std::string_view status);
void reloading();
void stopping();
void status(std::string_view text);
void watchdog();

// How often systemd expects WATCHDOG=1 (WatchdogSec=), or zero when it does not.
std::chrono::microseconds watchdog_interval();

// True when stderr is connected to the journal (JOURNAL_STREAM names it): log lines then
// carry a "<N>" priority prefix and no timestamp, journald adds its own.
bool logging_to_journal();

}  // namespace scraperd::daemon::systemd
