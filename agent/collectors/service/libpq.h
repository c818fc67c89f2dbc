#pragma once
// libpq, loaded the first time the PostgreSQL collector has a target rather than linked into
// the binary: an agent without PostgreSQL targets then never maps it, nor what it pulls in
// (GnuTLS, Kerberos, p11-kit, ...: about 2.5 MB of resident memory).

#include <libpq-fe.h>

#include "vigil/status.h"

namespace vigil::collectors {

/// The libpq functions the collector calls.
struct LibPq {
  decltype(&::PQconnectdbParams) connectdbParams = nullptr;
  decltype(&::PQstatus) status = nullptr;
  decltype(&::PQerrorMessage) errorMessage = nullptr;
  decltype(&::PQfinish) finish = nullptr;
  decltype(&::PQexec) exec = nullptr;
  decltype(&::PQresultStatus) resultStatus = nullptr;
  decltype(&::PQclear) clear = nullptr;
  decltype(&::PQntuples) ntuples = nullptr;
  decltype(&::PQgetvalue) getvalue = nullptr;
  decltype(&::PQgetisnull) getisnull = nullptr;
};

/// libpq's functions, loaded on the first call (thread-safe) and kept; an error saying what to
/// install if the library cannot be loaded.
Result<const LibPq*> loadLibPq();

}  // namespace vigil::collectors
