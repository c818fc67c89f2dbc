// The remote-write wire format: protobuf WriteRequest, snappy block compression.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <snappy.h>

#include <bit>

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

}  // namespace

std::string encodeLabels(const LabelSet& labels) {
  remote::TimeSeries ts;
  for (const Label& l : labels) {
    remote::Label* wl = ts.add_labels();
    wl->set_name(l.name);
    wl->set_value(l.value);
  }
  return ts.SerializeAsString();
}

// The samples are framed here rather than built as messages: a TimeSeries is its label fields
// (encoded once per series) followed by its sample fields, and building message objects for
// every sample of every request would cost more than the rest of sending. Sizes are worked out
// first so that the request is written once into a buffer of the right size.
std::string encodeParts(std::span<const SeriesPart> parts) {
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  constexpr uint32_t kTimeSeriesTag = (1 << 3) | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  constexpr uint32_t kSampleTag = (2 << 3) | WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
  constexpr uint32_t kValueTag = (1 << 3) | WireFormatLite::WIRETYPE_FIXED64;
  constexpr uint32_t kTimestampTag = (2 << 3) | WireFormatLite::WIRETYPE_VARINT;
  auto sampleSize = [](const Sample& s) {
    return 1 + 8 + 1 + CodedOutputStream::VarintSize64(static_cast<uint64_t>(s.t));
  };
  std::vector<std::size_t> series_sizes(parts.size());
  std::size_t total = 0;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const SeriesPart& p = parts[k];
    std::size_t size = p.label_bytes->size();
    for (std::size_t i = 0; i < p.count; ++i) {
      const std::size_t sample = sampleSize(p.samples[i]);
      size += 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(sample)) + sample;
    }
    series_sizes[k] = size;
    total += 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) + size;
  }
  std::string raw(total, '\0');
  uint8_t* out = reinterpret_cast<uint8_t*>(raw.data());
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const SeriesPart& p = parts[k];
    out = CodedOutputStream::WriteTagToArray(kTimeSeriesTag, out);
    out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(series_sizes[k]), out);
    out = CodedOutputStream::WriteRawToArray(p.label_bytes->data(),
                                             static_cast<int>(p.label_bytes->size()), out);
    for (std::size_t i = 0; i < p.count; ++i) {
      const Sample& sample = p.samples[i];
      out = CodedOutputStream::WriteTagToArray(kSampleTag, out);
      out = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(sampleSize(sample)), out);
      out = CodedOutputStream::WriteTagToArray(kValueTag, out);
      out = CodedOutputStream::WriteLittleEndian64ToArray(std::bit_cast<uint64_t>(sample.v), out);
      out = CodedOutputStream::WriteTagToArray(kTimestampTag, out);
      out = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(sample.t), out);
    }
  }
  std::string compressed(snappy::MaxCompressedLength(raw.size()), '\0');
  std::size_t compressed_size = 0;
  snappy::RawCompress(raw.data(), raw.size(), compressed.data(), &compressed_size);
  compressed.resize(compressed_size);
  return compressed;
}

std::string encodeMetadata(std::span<const MetricMetadata> metadata) {
  remote::WriteRequest request;
  addMetadata(metadata, request);
  return compress(request);
}

std::string encodeWriteRequest(const WriteRequestContent& content) {
  remote::WriteRequest request;
  for (const WriteRequestSeries& s : content.series) {
    remote::TimeSeries* ts = request.add_timeseries();
    for (const Label& l : s.labels) {
      remote::Label* wl = ts->add_labels();
      wl->set_name(l.name);
      wl->set_value(l.value);
    }
    for (const Sample& sample : s.samples) {
      remote::Sample* ws = ts->add_samples();
      ws->set_value(sample.v);
      ws->set_timestamp(sample.t);
    }
  }
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
