#include "postgres_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "credentials.h"
#include "libpq.h"

namespace vigil::collectors {

namespace {

// The loaded library; set before any of the functions below run (collect() loads it).
const LibPq* pq = nullptr;

using Connection = std::unique_ptr<PGconn, decltype(LibPq::finish)>;
using QueryResult = std::unique_ptr<PGresult, decltype(LibPq::clear)>;

// pg_stat_database columns: numbackends is a gauge, the rest are counters that
// postgres_exporter names without a _total suffix.
struct Column {
  const char* name;
  MetricType type;
  const char* help;
};
constexpr Column kDatabaseColumns[] = {
    {"numbackends", MetricType::kGauge,
     "Number of backends currently connected to this database. This is the only column in this "
     "view that returns a value reflecting current state; all other columns return the "
     "accumulated values since the last reset."},
    {"xact_commit", MetricType::kCounter,
     "Number of transactions in this database that have been committed"},
    {"xact_rollback", MetricType::kCounter,
     "Number of transactions in this database that have been rolled back"},
    {"blks_read", MetricType::kCounter, "Number of disk blocks read in this database"},
    {"blks_hit", MetricType::kCounter,
     "Number of times disk blocks were found already in the buffer cache"},
    {"tup_returned", MetricType::kCounter, "Number of rows returned by queries in this database"},
    {"tup_fetched", MetricType::kCounter, "Number of rows fetched by queries in this database"},
    {"tup_inserted", MetricType::kCounter, "Number of rows inserted by queries in this database"},
    {"tup_updated", MetricType::kCounter, "Number of rows updated by queries in this database"},
    {"tup_deleted", MetricType::kCounter, "Number of rows deleted by queries in this database"},
    {"conflicts", MetricType::kCounter,
     "Number of queries canceled due to conflicts with recovery in this database"},
    {"temp_files", MetricType::kCounter, "Number of temporary files created by queries"},
    {"temp_bytes", MetricType::kCounter,
     "Total amount of data written to temporary files by queries in this database"},
    {"deadlocks", MetricType::kCounter, "Number of deadlocks detected in this database"},
    {"blk_read_time", MetricType::kCounter,
     "Time spent reading data file blocks by backends in this database, in milliseconds"},
    {"blk_write_time", MetricType::kCounter,
     "Time spent writing data file blocks by backends in this database, in milliseconds"},
};

// libpq's message on one line: it can span several ("...failed\n\tIs the server running...").
std::string errorOf(PGconn* c) {
  std::string e = pq->errorMessage(c);
  std::replace(e.begin(), e.end(), '\n', ' ');
  std::replace(e.begin(), e.end(), '\t', ' ');
  while (!e.empty() && e.back() == ' ') {
    e.pop_back();
  }
  return e;
}

Result<QueryResult> query(PGconn* c, const char* sql) {
  QueryResult r(pq->exec(c, sql), pq->clear);
  if (!r || pq->resultStatus(r.get()) != PGRES_TUPLES_OK) {
    return Status(StatusCode::kUnavailable, errorOf(c));
  }
  return r;
}

double number(const PGresult* r, int row, int col) {
  if (pq->getisnull(r, row, col)) {
    return 0;
  }
  return std::strtod(pq->getvalue(r, row, col), nullptr);
}

std::string text(const PGresult* r, int row, int col) {
  return pq->getisnull(r, row, col) ? std::string() : std::string(pq->getvalue(r, row, col));
}

class PostgresCollector : public Collector {
 public:
  explicit PostgresCollector(std::vector<ServiceTarget> targets) : targets_(std::move(targets)) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (targets_.empty()) {
      return Status::ok();
    }
    auto& up = out.family("pg_up",
                          "Whether the last scrape of metrics from PostgreSQL was able to connect "
                          "to the server (1 for yes, 0 for no).",
                          MetricType::kGauge);
    auto loaded = loadLibPq();
    if (!loaded) {
      for (const auto& t : targets_) {
        MetricBatch::add(up, {{"target", t.address}}, 0);
      }
      return loaded.status();
    }
    pq = *loaded;
    Status first_error = Status::ok();
    for (const auto& t : targets_) {
      Status st = collectOne(t, ctx.deadline, out);
      MetricBatch::add(up, {{"target", t.address}}, st.isOk() ? 1 : 0);
      if (!st.isOk()) {
        spdlog::warn("postgres collection failed target={} error=\"{}\"", t.address, st.message());
        if (first_error.isOk()) {
          first_error = Status(st.code(), t.address + ": " + st.message());
        }
      }
    }
    return first_error;
  }

 private:
  Status collectOne(const ServiceTarget& t, std::chrono::steady_clock::time_point deadline,
                    MetricBatch& out) {
    auto password = targetPassword(t);
    if (!password) {
      return password.status();
    }
    const auto colon = t.address.rfind(':');
    const std::string host = t.address.substr(0, colon);
    const std::string port = t.address.substr(colon + 1);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    // libpq counts whole seconds, at least 2; queries get what is left of the cycle.
    const std::string connect_timeout = std::to_string(std::max<int64_t>(2, left.count() / 1000));
    const std::string options =
        "-c statement_timeout=" + std::to_string(std::max<int64_t>(100, left.count()));
    const std::string user = t.username.empty() ? "postgres" : t.username;
    const std::string dbname = t.database.empty() ? "postgres" : t.database;
    const char* keys[] = {"host",     "port",    "dbname",          "user",
                          "password", "options", "connect_timeout", "application_name",
                          nullptr};
    const char* values[] = {host.c_str(),
                            port.c_str(),
                            dbname.c_str(),
                            user.c_str(),
                            password->c_str(),
                            options.c_str(),
                            connect_timeout.c_str(),
                            "vigil",
                            nullptr};
    Connection conn(pq->connectdbParams(keys, values, 0), pq->finish);
    if (!conn || pq->status(conn.get()) != CONNECTION_OK) {
      // libpq's messages say what failed (refused, authentication) without the password.
      return Status(StatusCode::kUnavailable,
                    conn ? errorOf(conn.get()) : std::string("out of memory"));
    }
    PGconn* c = conn.get();
    const auto ping_start = std::chrono::steady_clock::now();
    if (auto r = query(c, "SELECT 1"); !r) {
      return r.status();
    }
    MetricBatch::add(
        out.family("pg_ping_duration_seconds", "Round trip of a trivial query (SELECT 1)",
                   MetricType::kGauge),
        {{"target", t.address}},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ping_start).count());

    std::string columns = "datid::text, datname";
    for (const Column& col : kDatabaseColumns) {
      columns += std::string(", ") + col.name + "::float8";
    }
    auto db = query(
        c, ("SELECT " + columns + " FROM pg_stat_database WHERE datname IS NOT NULL").c_str());
    if (!db) {
      return db.status();
    }
    for (std::size_t k = 0; k < std::size(kDatabaseColumns); ++k) {
      const Column& col = kDatabaseColumns[k];
      auto& family = out.family(std::string("pg_stat_database_") + col.name, col.help, col.type);
      for (int row = 0; row < pq->ntuples(db->get()); ++row) {
        MetricBatch::add(family,
                         {{"datid", text(db->get(), row, 0)},
                          {"datname", text(db->get(), row, 1)},
                          {"target", t.address}},
                         number(db->get(), row, static_cast<int>(k) + 2));
      }
    }

    auto activity = query(c,
                          "SELECT datname, coalesce(state, ''), coalesce(usename, ''), "
                          "coalesce(application_name, ''), coalesce(backend_type, ''), "
                          "coalesce(wait_event_type, ''), coalesce(wait_event, ''), count(*), "
                          "coalesce(max(extract(epoch FROM now() - xact_start)), 0) "
                          "FROM pg_stat_activity WHERE datname IS NOT NULL "
                          "GROUP BY 1, 2, 3, 4, 5, 6, 7");
    if (!activity) {
      return activity.status();
    }
    auto& count = out.family("pg_stat_activity_count", "number of connections in this state",
                             MetricType::kGauge);
    auto& max_tx = out.family("pg_stat_activity_max_tx_duration",
                              "max duration in seconds any active transaction has been running",
                              MetricType::kGauge);
    for (int row = 0; row < pq->ntuples(activity->get()); ++row) {
      const PGresult* r = activity->get();
      LabelSet labels = {{"application_name", text(r, row, 3)},
                         {"backend_type", text(r, row, 4)},
                         {"datname", text(r, row, 0)},
                         {"state", text(r, row, 1)},
                         {"target", t.address},
                         {"usename", text(r, row, 2)},
                         {"wait_event", text(r, row, 6)},
                         {"wait_event_type", text(r, row, 5)}};
      MetricBatch::add(count, labels, number(r, row, 7));
      MetricBatch::add(max_tx, std::move(labels), number(r, row, 8));
    }

    auto settings = query(c,
                          "SELECT name, setting::float8 FROM pg_settings WHERE name IN "
                          "('max_connections', 'superuser_reserved_connections')");
    if (!settings) {
      return settings.status();
    }
    for (int row = 0; row < pq->ntuples(settings->get()); ++row) {
      const std::string name = text(settings->get(), row, 0);
      MetricBatch::add(
          out.family("pg_settings_" + name, "Server Parameter: " + name, MetricType::kGauge),
          {{"target", t.address}}, number(settings->get(), row, 1));
    }

    auto replication =
        query(c,
              "SELECT pg_is_in_recovery()::int, CASE WHEN pg_is_in_recovery() THEN "
              "coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) ELSE 0 "
              "END");
    if (!replication) {
      return replication.status();
    }
    MetricBatch::add(out.family("pg_replication_is_replica", "Indicates if the server is a replica",
                                MetricType::kGauge),
                     {{"target", t.address}}, number(replication->get(), 0, 0));
    MetricBatch::add(out.family("pg_replication_lag_seconds",
                                "Replication lag behind master in seconds", MetricType::kGauge),
                     {{"target", t.address}}, number(replication->get(), 0, 1));
    return Status::ok();
  }

  std::vector<ServiceTarget> targets_;
};

}  // namespace

Result<CollectorPtr> makePostgresCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<PostgresCollector>(settings.targets));
}

}  // namespace vigil::collectors
