#include "config/config.h"

#include <sstream>

namespace scraperd::config {

std::string Diagnostic::str() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ':' << line << ':' << column;
  out << ": " << message;
  return out.str();
}

std::string Config::redact(std::string text) const {
  return config::redact(std::move(text), secrets);
}

std::string redact(std::string text,
                   const std::vector<std::pair<std::string, std::string>>& secrets) {
  for (const auto& [value, name] : secrets) {
    for (auto at = text.find(value); at != std::string::npos;
         at = text.find(value, at + name.size()))
      text.replace(at, value.size(), name);
  }
  return text;
}

bool same_job(const Job& a, const Job& b) {
  Job moved = a;
  moved.file = b.file;
  moved.line = b.line;
  return moved == b;
}

}  // namespace scraperd::config
