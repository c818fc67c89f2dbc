#pragma once
// Internal: one remote-write endpoint's queue (see vigil/exporters/remote_write.h).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "vigil/remote_write.h"
#include "vigil/store.h"
#include "wire.h"

namespace vigil::exporters {

class HttpClient;

class EndpointQueue {
 public:
  /// Samples with timestamps up to `position` count as sent already.
  EndpointQueue(const Store& store, RemoteWriteConfig config, LabelSet external_labels,
                int64_t position, MetadataSource metadata, std::function<void()> on_progress);
  ~EndpointQueue();

  void start();
  void stop();

  /// Every sample with a timestamp up to this (ms) has been acknowledged or dropped.
  int64_t position() const { return position_.load(); }
  const std::string& remoteName() const { return remote_name_; }
  const RemoteWriteConfig& config() const { return config_; }
  void appendStats(MetricBatch& out) const;

 private:
  enum class Outcome { kSent, kRejected, kStopped };
  // What one shard saw in a cycle; merged by the cycle once the shards are done.
  struct ShardStats {
    double ok_seconds = 0;  // time spent in successful requests
    int ok = 0;
    int failures = 0;  // attempts that will be retried
  };
  struct Response {
    int status = 0;  // 0: no response (connection error, timeout)
    std::string detail;
    std::chrono::milliseconds retry_after{0};
  };

  void run();
  void cycle();
  void sendMetadata();
  void sendShard(int shard, std::span<const SeriesPart> parts, ShardStats& stats);
  // Sends one request until it is taken, rejected or the queue stops, backing off in between.
  Outcome sendWithRetries(int shard, const std::string& body, std::size_t samples,
                          Response* rejection, ShardStats& stats);
  Response post(int shard, const std::string& body);
  bool sleepUnlessStopped(std::chrono::milliseconds d);
  int desiredShards(std::size_t batches) const;

  const Store& store_;
  const RemoteWriteConfig config_;
  const LabelSet external_labels_;
  const MetadataSource metadata_;
  const std::function<void()> on_progress_;
  std::string remote_name_;
  std::string origin_;  // scheme://host:port
  std::string path_;

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<HttpClient>> clients_;  // one per shard, kept alive
  std::mutex clients_mu_;

  // Owned by the queue's thread.
  int64_t floor_;      // series not seen yet: samples up to here were sent before a restart
  int64_t read_from_;  // the previous cycle's upper bound
  // What the queue knows of each series, by the store's slot (checked against the hash).
  struct KnownSeries {
    uint64_t hash = 0;
    int64_t sent_through = 0;  // newest sample taken
    bool resolved = false;     // outgoing labels worked out (external labels, relabeling)
    std::unique_ptr<const std::string> label_bytes;  // encoded outgoing labels; null: filtered
    bool used = false;
  };
  std::vector<KnownSeries> known_;
  int64_t last_metadata_ms_ = 0;
  double request_seconds_ewma_ = 0;
  bool failures_last_cycle_ = false;

  std::atomic<int64_t> position_;
  std::atomic<int64_t> highest_sent_ms_{0};
  std::atomic<int64_t> newest_read_ms_{0};
  std::atomic<uint64_t> samples_sent_{0};
  std::atomic<uint64_t> samples_retried_{0};
  std::atomic<uint64_t> samples_dropped_{0};
  std::atomic<uint64_t> samples_filtered_{0};
  std::atomic<uint64_t> metadata_sent_{0};
  std::atomic<uint64_t> metadata_dropped_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> requests_ok_{0};
  std::atomic<uint64_t> requests_retried_{0};
  std::atomic<uint64_t> requests_rejected_{0};
  std::atomic<int64_t> pending_samples_{0};
  std::atomic<int> shards_;
  std::atomic<uint64_t> request_micros_{0};
};

}  // namespace vigil::exporters
