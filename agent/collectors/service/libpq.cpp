#include "libpq.h"

#include <dlfcn.h>

#include <string>

namespace vigil::collectors {

namespace {

Result<const LibPq*> load() {
  // The soname Debian's libpq5 installs; the library stays loaded for the process's life.
  constexpr const char* kLibrary = "libpq.so.5";
  void* handle = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return Status(StatusCode::kUnavailable,
                  std::string("cannot load ") + kLibrary +
                      " for the PostgreSQL collector (install libpq5): " + (why ? why : ""));
  }
  static LibPq pq;
  std::string missing;
  auto bind = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, name));
    if (fn == nullptr) {
      missing += missing.empty() ? name : std::string(", ") + name;
    }
  };
  bind(pq.connectdbParams, "PQconnectdbParams");
  bind(pq.status, "PQstatus");
  bind(pq.errorMessage, "PQerrorMessage");
  bind(pq.finish, "PQfinish");
  bind(pq.exec, "PQexec");
  bind(pq.resultStatus, "PQresultStatus");
  bind(pq.clear, "PQclear");
  bind(pq.ntuples, "PQntuples");
  bind(pq.getvalue, "PQgetvalue");
  bind(pq.getisnull, "PQgetisnull");
  if (!missing.empty()) {
    return Status(StatusCode::kUnavailable,
                  std::string(kLibrary) + " lacks the functions " + missing);
  }
  return &pq;
}

}  // namespace

Result<const LibPq*> loadLibPq() {
  static const Result<const LibPq*> loaded = load();
  return loaded;
}

}  // namespace vigil::collectors
