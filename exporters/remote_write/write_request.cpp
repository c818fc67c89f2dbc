// The remote-write wire format: protobuf WriteRequest, snappy block compression.
#include <snappy.h>

#include "remote.pb.h"
#include "vigil/exporters/remote_write.h"
#include "wire.h"

namespace vigil::exporters {

namespace {

remote::MetricMetadata::MetricType wireType(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return remote::MetricMetadata::COUNTER;
    case MetricType::kGauge:
      return remote::MetricMetadata::GAUGE;
    case MetricType::kHistogram:
      return remote::MetricMetadata::HISTOGRAM;
    case MetricType::kSummary:
      return remote::MetricMetadata::SUMMARY;
    case MetricType::kUntyped:
      break;
  }
  return remote::MetricMetadata::UNKNOWN;
}

MetricType fromWireType(remote::MetricMetadata::MetricType type) {
  switch (type) {
    case remote::MetricMetadata::COUNTER:
      return MetricType::kCounter;
    case remote::MetricMetadata::GAUGE:
      return MetricType::kGauge;
    case remote::MetricMetadata::HISTOGRAM:
      return MetricType::kHistogram;
    case remote::MetricMetadata::SUMMARY:
      return MetricType::kSummary;
    default:
      return MetricType::kUntyped;
  }
}

}  // namespace

namespace {

std::string compress(const remote::WriteRequest& request) {
  const std::string raw = request.SerializeAsString();
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  return compressed;
}

void addMetadata(std::span<const MetricMetadata> metadata, remote::WriteRequest& request) {
  for (const MetricMetadata& m : metadata) {
    remote::MetricMetadata* wm = request.add_metadata();
    wm->set_type(wireType(m.type));
    wm->set_metric_family_name(m.name);
    wm->set_help(m.help);
  }
}

void addParts(std::span<const SeriesPart> parts, remote::WriteRequest& request) {
  request.mutable_timeseries()->Reserve(static_cast<int>(parts.size()));
  for (const SeriesPart& p : parts) {
    remote::TimeSeries* ts = request.add_timeseries();
    ts->mutable_labels()->Reserve(static_cast<int>(p.labels->size()));
    for (const Label& l : *p.labels) {
      remote::Label* wl = ts->add_labels();
      wl->set_name(l.name);
      wl->set_value(l.value);
    }
    ts->mutable_samples()->Reserve(static_cast<int>(p.count));
    for (std::size_t i = 0; i < p.count; ++i) {
      remote::Sample* ws = ts->add_samples();
      ws->set_value(p.samples[i].v);
      ws->set_timestamp(p.samples[i].t);
    }
  }
}

}  // namespace

std::string encodeParts(std::span<const SeriesPart> parts) {
  remote::WriteRequest request;
  addParts(parts, request);
  return compress(request);
}

std::string encodeMetadata(std::span<const MetricMetadata> metadata) {
  remote::WriteRequest request;
  addMetadata(metadata, request);
  return compress(request);
}

std::string encodeWriteRequest(const WriteRequestContent& content) {
  std::vector<SeriesPart> parts;
  parts.reserve(content.series.size());
  for (const WriteRequestSeries& s : content.series) {
    parts.push_back({&s.labels, s.samples.data(), s.samples.size()});
  }
  remote::WriteRequest request;
  addParts(parts, request);
  addMetadata(content.metadata, request);
  return compress(request);
}

Result<WriteRequestContent> decodeWriteRequest(std::string_view body) {
  std::string raw;
  if (!snappy::Uncompress(body.data(), body.size(), &raw)) {
    return invalidArgument("body is not snappy block-compressed");
  }
  remote::WriteRequest request;
  if (!request.ParseFromString(raw)) {
    return invalidArgument("body is not a protobuf WriteRequest");
  }
  WriteRequestContent out;
  out.series.reserve(static_cast<std::size_t>(request.timeseries_size()));
  for (const remote::TimeSeries& ts : request.timeseries()) {
    WriteRequestSeries s;
    for (const remote::Label& l : ts.labels()) {
      s.labels.push_back({l.name(), l.value()});
    }
    for (const remote::Sample& sample : ts.samples()) {
      s.samples.push_back({sample.timestamp(), sample.value()});
    }
    out.series.push_back(std::move(s));
  }
  for (const remote::MetricMetadata& m : request.metadata()) {
    out.metadata.push_back({m.metric_family_name(), fromWireType(m.type()), m.help()});
  }
  return out;
}

}  // namespace vigil::exporters
