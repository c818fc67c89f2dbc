// Who may call what: the decisions of the access policy for each kind of route, method and
// token.
#include <catch2/catch.hpp>

#include "agent/http/access.h"

using namespace vigil;

namespace {

const std::string kRead = "read-token-0123456789";
const std::string kAdmin = "admin-token-0123456789";

int status(const AccessPolicy& p, Access a, const char* method, const std::string& header) {
  return p.decide(a, method, header).status;
}

}  // namespace

TEST_CASE("Access: read and admin scopes", "[http][security]") {
  const AccessPolicy p({kRead}, {kAdmin}, false);
  const std::string read = "Bearer " + kRead;
  const std::string admin = "Bearer " + kAdmin;
  CHECK(status(p, Access::kByMethod, "GET", read) == 0);
  CHECK(status(p, Access::kByMethod, "GET", admin) == 0);  // admin may read too
  CHECK(status(p, Access::kByMethod, "GET", "") == 401);
  CHECK(status(p, Access::kByMethod, "GET", "Bearer nope") == 401);
  CHECK(status(p, Access::kByMethod, "GET", "Basic " + kRead) == 401);
  CHECK(status(p, Access::kByMethod, "GET", "bearer " + kRead) == 0);  // the scheme's case
  CHECK(status(p, Access::kByMethod, "POST", read) == 403);
  CHECK(status(p, Access::kByMethod, "DELETE", admin) == 0);
  CHECK(status(p, Access::kRead, "POST", read) == 0);  // a POSTed query
  CHECK(status(p, Access::kAdmin, "GET", read) == 403);
  CHECK(status(p, Access::kPublic, "GET", "") == 0);
  // A token that is a prefix or an extension of a real one is no token.
  CHECK(status(p, Access::kByMethod, "GET", "Bearer " + kRead.substr(0, 10)) == 401);
  CHECK(status(p, Access::kByMethod, "GET", read + "x") == 401);

  auto d = p.decide(Access::kByMethod, "POST", read);
  CHECK(d.reason == "forbidden");
  CHECK(d.message.find(kRead) == std::string::npos);  // never echoed
}

TEST_CASE("Access: without tokens reading is open and changing refused, unless disabled",
          "[http][security]") {
  const AccessPolicy none;
  CHECK(status(none, Access::kByMethod, "GET", "") == 0);
  CHECK(status(none, Access::kByMethod, "GET", "Bearer whatever") == 0);
  auto d = none.decide(Access::kByMethod, "POST", "");
  CHECK(d.status == 403);
  CHECK(d.message.find("admin_token_files") != std::string::npos);

  // Admin tokens only: reading stays open, changing needs the token.
  const AccessPolicy admin_only({}, {kAdmin}, false);
  CHECK(status(admin_only, Access::kByMethod, "GET", "") == 0);
  CHECK(status(admin_only, Access::kByMethod, "PUT", "") == 401);
  CHECK(status(admin_only, Access::kByMethod, "PUT", "Bearer " + kAdmin) == 0);

  const AccessPolicy disabled({kRead}, {kAdmin}, true);
  CHECK(status(disabled, Access::kByMethod, "POST", "") == 0);
  CHECK(status(disabled, Access::kAdmin, "DELETE", "") == 0);
}
