#include "credentials.h"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace vigil::collectors {

Result<std::string> targetPassword(const ServiceTarget& t) {
  if (!t.password_file.empty()) {
    std::ifstream in(t.password_file);
    if (!in) {
      return Status(StatusCode::kUnavailable, "cannot read password_file " + t.password_file);
    }
    std::string p((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) {
      p.pop_back();
    }
    return p;
  }
  if (!t.password_env.empty()) {
    const char* v = std::getenv(t.password_env.c_str());
    if (v == nullptr) {
      return Status(StatusCode::kUnavailable,
                    "environment variable " + t.password_env + " is not set");
    }
    return std::string(v);
  }
  return t.password;
}

}  // namespace vigil::collectors
