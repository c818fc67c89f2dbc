#pragma once
// A throwaway certificate authority and a server certificate for 127.0.0.1 it signed, made with
// the openssl command line, for the tests' HTTPS servers.
#include <catch2/catch.hpp>
#include <string>

#include "tests/support/process.h"

namespace vigil::test {

struct TestCertificates {
  std::string ca;    // the CA certificate (PEM): what a client trusts
  std::string cert;  // the server's certificate (PEM)
  std::string key;   // the server's private key
};

/// CA valid 30 days, server certificate valid `server_days`.
inline TestCertificates makeTestCertificates(const TempDir& dir, int server_days = 2) {
  dir.write("san.cnf", "subjectAltName=IP:127.0.0.1\n");
  auto run = [&](std::vector<std::string> argv) {
    const auto r = runCommand(argv);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
  };
  const std::string ec = "ec:" + dir.file("ec.pem");
  run({"openssl", "ecparam", "-name", "prime256v1", "-out", dir.file("ec.pem")});
  run({"openssl", "req", "-x509", "-newkey", ec, "-nodes", "-keyout", dir.file("ca.key"), "-out",
       dir.file("ca.pem"), "-days", "30", "-subj", "/CN=vigil test CA"});
  run({"openssl", "req", "-newkey", ec, "-nodes", "-keyout", dir.file("server.key"), "-out",
       dir.file("server.csr"), "-subj", "/CN=127.0.0.1"});
  run({"openssl", "x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.pem"),
       "-CAkey", dir.file("ca.key"), "-CAcreateserial", "-out", dir.file("server.pem"), "-days",
       std::to_string(server_days), "-extfile", dir.file("san.cnf")});
  return {dir.file("ca.pem"), dir.file("server.pem"), dir.file("server.key")};
}

}  // namespace vigil::test
