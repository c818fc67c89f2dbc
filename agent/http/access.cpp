#include "access.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace vigil {

namespace {

std::array<unsigned char, 32> digestOf(std::string_view token) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

// "Bearer TOKEN" (the scheme is case-insensitive, as in RFC 7235); empty otherwise.
std::string_view bearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) {
    return {};
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
      return {};
    }
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace

AccessPolicy::AccessPolicy(const std::vector<std::string>& read_tokens,
                           const std::vector<std::string>& admin_tokens, bool disabled)
    : disabled_(disabled) {
  for (const auto& t : read_tokens) read_.push_back(digestOf(t));
  for (const auto& t : admin_tokens) admin_.push_back(digestOf(t));
}

AccessPolicy::Grant AccessPolicy::grantOf(std::string_view token) const {
  const auto presented = digestOf(token);
  // Every digest is compared, whatever matched before.
  int admin = 0;
  int read = 0;
  for (const auto& d : admin_) {
    admin |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0;
  }
  for (const auto& d : read_) {
    read |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0;
  }
  return admin ? Grant::kAdmin : read ? Grant::kRead : Grant::kNone;
}

AccessPolicy::Decision AccessPolicy::decide(Access access, std::string_view method,
                                            std::string_view authorization) const {
  if (disabled_ || access == Access::kPublic) {
    return {};
  }
  const bool admin_needed = access == Access::kAdmin ||
                            (access == Access::kByMethod && method != "GET" && method != "HEAD");
  if (!admin_needed && read_.empty()) {
    return {};  // reading is open until read tokens are configured
  }
  const std::string_view token = bearerToken(authorization);
  if (admin_needed && admin_.empty()) {
    return {403, "forbidden",
            "changes are refused: no admin token is configured (web.authorization."
            "admin_token_files), or disable authorization on a loopback listener "
            "(web.authorization.disabled_on_loopback)"};
  }
  if (token.empty()) {
    return {401, "unauthenticated",
            std::string("a bearer token is required (Authorization: Bearer TOKEN) with the ") +
                (admin_needed ? "admin" : "read") + " scope"};
  }
  const Grant grant = grantOf(token);
  if (grant == Grant::kNone) {
    return {401, "unauthenticated", "the bearer token is not one of vigil's"};
  }
  if (admin_needed && grant != Grant::kAdmin) {
    return {403, "forbidden", "the token has the read scope; this needs an admin token"};
  }
  return {};
}

}  // namespace vigil
