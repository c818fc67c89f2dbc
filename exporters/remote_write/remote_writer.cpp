// The endpoints' queues and their persisted positions.
#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "queue.h"
#include "vigil/atomic_file.h"
#include "vigil/clock.h"
#include "vigil/exporters/remote_write.h"
#include "vigil/json_integer.h"

namespace vigil::exporters {

namespace {

// What identifies an endpoint across reloads and restarts: a queue whose configuration is
// unchanged keeps running (and its position); any change starts a new queue.
std::string fingerprint(const RemoteWriteConfig& c, const LabelSet& external) {
  std::ostringstream out;
  out << c.url << '\n' << c.name << '\n' << c.remote_timeout.count() << '\n';
  const auto& h = c.http;
  out << h.auth_type << '\n'
      << h.credentials << '\n'
      << h.credentials_file << '\n'
      << h.basic_username << '\n'
      << h.basic_password << '\n'
      << h.basic_password_file << '\n'
      << h.ca_file << '\n'
      << h.insecure_skip_verify << '\n';
  for (const auto& [k, v] : h.headers) {
    out << k << ':' << v << '\n';
  }
  for (const RelabelConfig& r : c.write_relabel_configs) {
    for (const auto& s : r.source_labels) {
      out << s << ',';
    }
    out << '|' << r.separator << '|' << r.regex << '|' << r.modulus << '|' << r.target_label << '|'
        << r.replacement << '|' << static_cast<int>(r.action) << '\n';
  }
  const auto& q = c.queue;
  out << q.capacity << ',' << q.min_shards << ',' << q.max_shards << ',' << q.max_samples_per_send
      << ',' << q.batch_send_deadline.count() << ',' << q.min_backoff.count() << ','
      << q.max_backoff.count() << ',' << q.retry_on_http_429 << '\n';
  out << c.metadata.send << ',' << c.metadata.send_interval.count() << ','
      << c.metadata.max_samples_per_send << '\n';
  for (const Label& l : external) {
    out << l.name << '=' << l.value << '\n';
  }
  return out.str();
}

// Positions are keyed by what decides which samples an endpoint receives: its URL and name.
std::string positionKey(const RemoteWriteConfig& c) { return c.name + "@" + c.url; }

class StoreRemoteWriter : public RemoteWriter {
 public:
  ~StoreRemoteWriter() override { stop(); }

  void attach(const Store& store, const std::string& data_dir, MetadataSource metadata) override {
    std::lock_guard lock(mu_);
    store_ = &store;
    path_ = data_dir + "/remote_write.positions";
    metadata_ = std::move(metadata);
    loadPositions();
  }

  void configure(const std::vector<RemoteWriteConfig>& endpoints,
                 const std::vector<Label>& external_labels) override {
    LabelSet external(external_labels.begin(), external_labels.end());
    std::sort(external.begin(), external.end());
    std::vector<std::unique_ptr<Running>> old;
    std::vector<std::unique_ptr<Running>> next;
    {
      std::lock_guard lock(mu_);
      if (store_ == nullptr || stopped_) {
        return;
      }
      old = std::move(queues_);
      for (const RemoteWriteConfig& c : endpoints) {
        const std::string fp = fingerprint(c, external);
        auto same = std::find_if(old.begin(), old.end(),
                                 [&](const auto& r) { return r && r->fingerprint == fp; });
        if (same != old.end()) {
          next.push_back(std::move(*same));
          continue;
        }
        const std::string key = positionKey(c);
        int64_t position = unixNowMs();  // a new endpoint gets what is collected from now on
        if (auto it = saved_.find(key); it != saved_.end()) {
          position = it->second;
        } else {
          // The queue being replaced (an edited configuration) hands over its position.
          for (const auto& r : old) {
            if (r && r->key == key) {
              position = r->queue->position();
            }
          }
        }
        auto running = std::make_unique<Running>();
        running->fingerprint = fp;
        running->key = key;
        running->queue = std::make_unique<EndpointQueue>(*store_, c, external, position, metadata_,
                                                         [this] { onProgress(); });
        next.push_back(std::move(running));
      }
    }
    // Removed and replaced queues stop outside the lock: a stopping queue reports progress.
    for (auto& r : old) {
      if (r) {
        r->queue->stop();
        std::lock_guard lock(mu_);
        saved_[r->key] = r->queue->position();
      }
    }
    std::lock_guard lock(mu_);
    for (auto& r : next) {
      saved_.erase(r->key);
      if (!r->started) {
        r->queue->start();
        r->started = true;
        spdlog::info("remote write started remote_name={} url={} position_ms={}",
                     r->queue->remoteName(), r->queue->config().url, r->queue->position());
      }
    }
    queues_ = std::move(next);
    (void)writePositions(false);
  }

  Status savePositions() override {
    std::lock_guard lock(mu_);
    return writePositions(true);
  }

  void appendStats(MetricBatch& out) const override {
    std::lock_guard lock(mu_);
    for (const auto& r : queues_) {
      r->queue->appendStats(out);
    }
  }

  void stop() override {
    std::vector<EndpointQueue*> queues;
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      for (auto& r : queues_) {
        queues.push_back(r->queue.get());
      }
    }
    // Stopped queues stay in place so that their final figures can still be read.
    for (EndpointQueue* q : queues) {
      q->stop();
    }
    std::lock_guard lock(mu_);
    if (store_ != nullptr && !queues.empty()) {
      (void)writePositions(true);
    }
  }

 private:
  struct Running {
    std::string fingerprint;
    std::string key;
    std::unique_ptr<EndpointQueue> queue;
    bool started = false;
  };

  void onProgress() {
    std::unique_lock lock(mu_, std::try_to_lock);
    // Written after every cycle (without fsync: it survives a crash of vigil, which is what
    // it is for); a cycle that finds the lock taken leaves it to the next one.
    if (lock.owns_lock()) {
      (void)writePositions(false);
    }
  }

  void loadPositions() {
    std::ifstream in(path_);
    if (!in) {
      return;
    }
    try {
      const auto doc = nlohmann::json::parse(in);
      for (const auto& e : doc.at("endpoints")) {
        saved_[e.at("key").get<std::string>()] = jsonInteger(e, "position_ms");
      }
    } catch (const std::exception& e) {
      // Starting from now loses the backlog, but resending the whole retention could only
      // be rejected as out of order.
      spdlog::error("remote write positions unreadable, starting from now path={} error=\"{}\"",
                    path_, e.what());
      saved_.clear();
    }
  }

  Status writePositions(bool sync) {
    nlohmann::json doc;
    doc["version"] = 1;
    doc["endpoints"] = nlohmann::json::array();
    std::map<std::string, int64_t> all(saved_.begin(), saved_.end());
    for (const auto& r : queues_) {
      all[r->key] = r->queue->position();
    }
    for (const auto& [key, position] : all) {
      doc["endpoints"].push_back({{"key", key}, {"position_ms", position}});
    }
    return writeFileAtomically(path_, doc.dump() + "\n", sync);
  }

  mutable std::mutex mu_;
  const Store* store_ = nullptr;
  bool stopped_ = false;
  std::string path_;
  MetadataSource metadata_;
  std::map<std::string, int64_t> saved_;  // positions of endpoints not running now
  std::vector<std::unique_ptr<Running>> queues_;
};

}  // namespace

std::shared_ptr<RemoteWriter> makeRemoteWriter() { return std::make_shared<StoreRemoteWriter>(); }

}  // namespace vigil::exporters
