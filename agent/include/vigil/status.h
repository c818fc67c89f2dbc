#pragma once
// The one error convention of vigil: functions that can fail at runtime return Status or
// Result<T>. Exceptions from third-party code (yaml-cpp, nlohmann::json, prometheus-cpp) are
// caught at the boundary that calls them and turned into a Status with an actionable message.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vigil {

enum class StatusCode {
  kOk,
  kInvalidArgument,    // bad input: dropped, counted, logged once
  kNotFound,           // a file or key that does not exist (often not an error for collectors)
  kUnavailable,        // transient: retried with back-off
  kDeadlineExceeded,   // ran past its deadline
  kResourceExhausted,  // a limit was hit: shed, counted
  kInternal,           // a bug
};

std::string_view statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "code: message", for logs.
  std::string toString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

/// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(state_).isOk() && "a Result built from a Status must be an error");
  }

  bool isOk() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return isOk(); }

  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

// A problem at a place in a user's file (config, rule file, test file): what the user reads.
struct SourceError {
  std::string file;
  int line = 0;    // 1-based; 0 when the position is unknown
  int column = 0;  // 1-based
  std::string message;

  /// "FILE:LINE:COL: message", or "FILE: message" without a position.
  std::string toString() const {
    std::string out = file;
    if (line > 0) {
      out += ':' + std::to_string(line) + ':' + std::to_string(column);
    }
    return out + ": " + message;
  }
};

}  // namespace vigil

#define VIGIL_RETURN_IF_ERROR(expr)         \
  do {                                      \
    ::vigil::Status vigil_status_ = (expr); \
    if (!vigil_status_.isOk()) {            \
      return vigil_status_;                 \
    }                                       \
  } while (false)
