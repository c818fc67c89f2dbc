#pragma once
// Who may call what on vigil's HTTP server: bearer tokens with two scopes. A read token may read
// (metrics, queries, alerts, rules, silences); an admin token may also change things (silences,
// acknowledgements, reloads, pushed alerts and metrics). Tokens are compared by their SHA-256
// digests in constant time, every configured token every time, so that neither the time taken
// nor an early exit tells how much of a guess was right.

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// What a route asks of a caller.
enum class Access {
  kPublic,    // nothing (health and readiness, for probes that carry no token)
  kRead,      // read, whatever the method (queries may be POSTed)
  kByMethod,  // read for GET and HEAD, admin for every other method
  kAdmin,
};

class AccessPolicy {
 public:
  /// No tokens: reading is open and changing anything is refused.
  AccessPolicy() = default;
  /// `disabled`: no token is asked for anything (the operator's choice, loopback only).
  AccessPolicy(const std::vector<std::string>& read_tokens,
               const std::vector<std::string>& admin_tokens, bool disabled);

  struct Decision {
    int status = 0;      // 0: allowed; else 401 or 403
    std::string reason;  // for vigil_http_requests_refused_total: unauthenticated, forbidden
    std::string message;
  };
  /// `authorization` is the request's Authorization header ("Bearer TOKEN"), or empty.
  Decision decide(Access access, std::string_view method, std::string_view authorization) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  enum class Grant { kNone, kRead, kAdmin };
  Grant grantOf(std::string_view token) const;

  std::vector<Digest> read_;
  std::vector<Digest> admin_;
  bool disabled_ = false;
};

}  // namespace vigil
