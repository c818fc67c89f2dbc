#include "price_file.h"

#include <charconv>
#include <string_view>

#include "vigil/yaml_reader.h"

namespace vigil {

namespace {

constexpr std::size_t kMaxPriceFileBytes = 8 << 20;
constexpr double kMaxHourly = 100000;   // $ per hour: beyond it, a unit mistake
constexpr double kHoursPerMonth = 730;  // OpenCost's

std::optional<double> number(std::string_view s) {
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc() || end != s.data() + s.size() || !(d >= 0) || d > kMaxHourly) {
    return std::nullopt;
  }
  return d;
}

// OpenCost writes discounts as "30%"; a plain fraction (0.3) is taken too.
std::optional<double> discount(std::string_view s) {
  const bool percent = s.ends_with('%');
  auto d = number(percent ? s.substr(0, s.size() - 1) : s);
  if (!d) {
    return std::nullopt;
  }
  const double fraction = percent ? *d / 100 : *d;
  return fraction <= 1 ? std::optional(fraction) : std::nullopt;
}

void readJson(const std::string& path, const std::string& text, CostPricing& p,
              std::vector<SourceError>& errors) {
  YamlReader r(path, errors);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    r.errors().push_back({path, e.mark.line + 1, e.mark.column + 1, e.msg});
    return;
  }
  if (!root.IsMap()) {
    r.error(root, "", "expected a JSON object of prices (OpenCost's custom pricing)");
    return;
  }
  double negotiated = 0;
  double base_discount = p.discount;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    auto text_of = [&]() -> std::optional<std::string> {
      if (!v.IsScalar()) {
        r.error(v, key, "expected a number or a string");
        return std::nullopt;
      }
      return v.Scalar();
    };
    auto price = [&](double& into) {
      if (auto s = text_of()) {
        if (auto d = number(*s)) {
          into = *d;
        } else {
          r.error(v, key, "expected a price from 0 to 100000 per hour, got \"" + *s + "\"");
        }
      }
    };
    auto fraction = [&](double& into) {
      if (auto s = text_of()) {
        if (auto d = discount(*s)) {
          into = *d;
        } else {
          r.error(v, key, "expected a discount such as \"10%\" or 0.1, got \"" + *s + "\"");
        }
      }
    };
    if (key == "CPU") {
      price(p.cpu_hourly);
    } else if (key == "spotCPU") {
      price(p.spot_cpu_hourly);
    } else if (key == "RAM") {
      price(p.ram_gib_hourly);
    } else if (key == "spotRAM") {
      price(p.spot_ram_gib_hourly);
    } else if (key == "GPU") {
      price(p.gpu_hourly);
    } else if (key == "storage") {  // OpenCost's is per GB-hour
      double hourly = p.storage_gib_monthly / kHoursPerMonth;
      price(hourly);
      p.storage_gib_monthly = hourly * kHoursPerMonth;
    } else if (key == "discount") {
      fraction(base_discount);
    } else if (key == "negotiatedDiscount") {
      fraction(negotiated);
    } else if (key == "spotLabel") {
      if (auto s = text_of()) p.spot_label = *s;
    } else if (key == "spotLabelValue") {
      if (auto s = text_of()) p.spot_label_value = *s;
    } else if (key == "region") {
      if (auto s = text_of()) p.region = *s;
    }
    // Any other key is one of OpenCost's for what vigil does not price (storage, egress, load
    // balancers, provider credentials): accepted so that an OpenCost file works unchanged.
  }
  // OpenCost combines the two discounts multiplicatively.
  p.discount = 1 - (1 - base_discount) * (1 - negotiated);
}

// One CSV record's fields: comma-separated, fields in double quotes may hold commas and "".
std::optional<std::vector<std::string>> csvFields(std::string_view line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"' && fields.back().empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  if (quoted) {
    return std::nullopt;
  }
  for (auto& f : fields) {
    while (!f.empty() && (f.back() == ' ' || f.back() == '\t')) f.pop_back();
    while (!f.empty() && (f.front() == ' ' || f.front() == '\t')) f.erase(0, 1);
  }
  return fields;
}

void readCsv(const std::string& path, std::string_view text, CostPricing& p,
             std::vector<SourceError>& errors) {
  auto error = [&](int line, std::string message) {
    errors.push_back({path, line, line > 0 ? 1 : 0, std::move(message)});
  };
  static constexpr std::string_view kColumns[] = {
      "InstanceID", "Region", "AssetClass", "InstanceIDField", "InstanceType", "MarketPriceHourly"};
  enum Column { kId, kRegion, kClass, kIdField, kType, kPrice, kColumnCount };
  int at[kColumnCount];
  bool header = false;
  int line_no = 0;
  std::size_t fields_in_header = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto fields = csvFields(line);
    if (!fields) {
      error(line_no, "a quoted field is not closed");
      continue;
    }
    if (!header) {
      header = true;
      fields_in_header = fields->size();
      bool complete = true;
      for (int c = 0; c < kColumnCount; ++c) {
        at[c] = -1;
        for (std::size_t i = 0; i < fields->size(); ++i) {
          std::string name = (*fields)[i];
          if (name.starts_with("\xEF\xBB\xBF")) name.erase(0, 3);  // a spreadsheet's BOM
          if (name == kColumns[c]) at[c] = static_cast<int>(i);
        }
        if (at[c] < 0) {
          error(line_no, "the header has no " + std::string(kColumns[c]) +
                             " column (expected OpenCost's: EndTimestamp,InstanceID,Region,"
                             "AssetClass,InstanceIDField,InstanceType,MarketPriceHourly,Version)");
          complete = false;
        }
      }
      if (!complete) return;
      continue;
    }
    if (fields->size() != fields_in_header) {
      error(line_no, "expected " + std::to_string(fields_in_header) +
                         " fields as in the header, got " + std::to_string(fields->size()));
      continue;
    }
    auto field = [&](Column c) { return (*fields)[static_cast<std::size_t>(at[c])]; };
    const std::string asset = field(kClass);
    if (asset == "pv") continue;  // vigil prices no persistent volumes
    if (asset != "node" && asset != "gpu") {
      error(line_no, "AssetClass \"" + asset + "\" is not node, gpu or pv");
      continue;
    }
    CostPricing::NodePrice row;
    row.gpu = asset == "gpu";
    row.id = field(kId);
    row.id_field = field(kIdField);
    row.region = field(kRegion);
    row.instance_type = field(kType);
    row.where = path + ":" + std::to_string(line_no);
    if (auto d = number(field(kPrice))) {
      row.hourly = *d;
    } else {
      error(line_no,
            "MarketPriceHourly \"" + field(kPrice) + "\" is not a price from 0 to 100000 per hour");
      continue;
    }
    if (!row.id.empty() && row.id_field != "metadata.name" && row.id_field != "spec.providerID" &&
        !row.id_field.starts_with("metadata.labels.")) {
      error(line_no, "InstanceIDField \"" + row.id_field +
                         "\" is not metadata.name, spec.providerID or metadata.labels.NAME");
      continue;
    }
    if (row.id.empty() && row.instance_type.empty()) {
      error(line_no, "a row needs an InstanceID or an InstanceType to match nodes by");
      continue;
    }
    p.node_prices.push_back(std::move(row));
  }
  if (!header) {
    error(0, "the file is empty (expected a header line and price rows)");
  }
}

}  // namespace

void readPriceFile(const std::string& path, CostPricing& into, std::vector<SourceError>& errors) {
  auto text = readConfigText(path, kMaxPriceFileBytes);
  if (!text) {
    errors.push_back({path, 0, 0, text.status().message()});
    return;
  }
  into.price_file = path;
  if (path.ends_with(".csv") || path.ends_with(".CSV")) {
    readCsv(path, *text, into, errors);
  } else {
    readJson(path, *text, into, errors);
  }
}

}  // namespace vigil
