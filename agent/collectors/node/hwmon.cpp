// node_hwmon_* from /sys/class/hwmon: temperatures, fan speeds, voltages, currents, power and
// energy of the hardware monitoring chips, named and scaled as node_exporter 1.5 names and
// scales them (its chip label is the device's bus and name, "platform_coretemp_0"; the chip's
// own name and each sensor's label come as separate info series). Virtual machines usually
// have none: then there is nothing to report.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// The sensor types node_exporter reads; other files of a chip's directory are not sensors.
constexpr std::array<std::string_view, 13> kSensorTypes{
    "vrm",  "beep_enable", "update_interval", "in",     "cpu",      "fan",      "pwm",
    "temp", "curr",        "power",           "energy", "humidity", "intrusion"};

// node_exporter's cleanMetricName: lower case, every character outside [a-z0-9:_] an
// underscore, underscores trimmed from both ends.
std::string cleanName(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool keep = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == ':' || l == '_';
    out.push_back(keep ? l : '_');
  }
  const auto first = out.find_first_not_of('_');
  if (first == std::string::npos) {
    return {};
  }
  return out.substr(first, out.find_last_not_of('_') - first + 1);
}

// A file name as <type><number>_<property> ("temp1_crit_alarm": temp, 1, crit_alarm; "vrm":
// vrm, 0, ""). False for a name that does not have that shape.
bool splitSensorFile(std::string_view name, std::string_view& type, unsigned& number,
                     std::string_view& property) {
  std::size_t i = 0;
  while (i < name.size() && (name[i] < '0' || name[i] > '9')) {
    ++i;
  }
  if (i == 0) {
    return false;
  }
  type = name.substr(0, i);
  const std::size_t digits = i;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
    ++i;
  }
  number = 0;
  if (i > digits) {
    const auto n = parseUnsigned(name.substr(digits, i - digits));
    if (!n || *n > 1'000'000) {
      return false;
    }
    number = static_cast<unsigned>(*n);
  }
  property = {};
  if (i < name.size()) {
    // Only "_" and at least one character may follow the number; a type without a number
    // takes everything (its underscores included), as node_exporter's pattern does.
    if (name[i] != '_' || i + 1 == name.size()) {
      return false;
    }
    property = name.substr(i + 1);
  }
  return true;
}

// The text of a small sysfs file without the newlines around it; nullopt if it cannot be read.
// Not readAttribute: node_exporter trims only newlines here, so a label of spaces stays one.
std::optional<std::string> readText(const std::string& path) {
  ProcFile file(path);
  std::string text;
  if (!file.tryRead(text)) {
    return std::nullopt;
  }
  while (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  while (!text.empty() && text.front() == '\n') {
    text.erase(text.begin());
  }
  return text;
}

std::string realPathOf(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) {
    return {};
  }
  std::string out(resolved);
  std::free(resolved);
  return out;
}

std::string baseName(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// How one property file of a sensor is reported: the family, and the factor its raw value is
// multiplied (or divided) by.
struct Reading {
  std::string family;
  std::string help;
  MetricType type = MetricType::kGauge;
  double multiply = 1;
  double divide = 1;
  bool beep_enable = false;  // "1" is 1, anything else 0
};

// node_exporter 1.5's naming of a sensor's property: "fan" "input" is node_hwmon_fan_rpm,
// "temp" "crit" node_hwmon_temp_crit_celsius, and so on. `has_bare` says the sensor also has a
// file without a property (then "input" keeps its name).
std::optional<Reading> readingOf(std::string_view type, std::string_view property, bool has_bare) {
  const std::string element(property);
  if (type == "beep_enable") {
    return Reading{
        "node_hwmon_beep_enabled", "Hardware beep enabled", MetricType::kGauge, 1, 1, true};
  }
  if (type == "vrm") {
    return Reading{"node_hwmon_voltage_regulator_version", "Hardware voltage regulator"};
  }
  if (type == "update_interval") {
    return Reading{"node_hwmon_update_interval_seconds", "Hardware monitor update interval",
                   MetricType::kGauge, 0.001};
  }
  std::string name = "node_hwmon_" + std::string(type);
  if (element == "input") {
    if (has_bare) {
      name += "_input";
    }
  } else if (!element.empty()) {
    name += "_" + cleanName(element);
  }
  const std::string t(type);
  if (element == "fault" || element == "alarm") {
    return Reading{name, "Hardware sensor " + element + " status (" + t + ")"};
  }
  if (element == "beep") {
    return Reading{name + "_enabled", "Hardware monitor sensor has beeping enabled"};
  }
  if (type == "in" || type == "cpu") {
    return Reading{name + "_volts", "Hardware monitor for voltage (" + element + ")",
                   MetricType::kGauge, 0.001};
  }
  if (type == "temp" && element != "type") {
    // A bare "temp" file is the input, and node_exporter says so in the help.
    return Reading{
        name + "_celsius",
        "Hardware monitor for temperature (" + (element.empty() ? "input" : element) + ")",
        MetricType::kGauge, 0.001};
  }
  if (type == "curr") {
    return Reading{name + "_amps", "Hardware monitor for current (" + element + ")",
                   MetricType::kGauge, 0.001};
  }
  if (type == "energy") {
    return Reading{name + "_joule_total",
                   "Hardware monitor for joules used so far (" + element + ")",
                   MetricType::kCounter, 1, 1e6};
  }
  if (type == "power" && element == "accuracy") {
    return Reading{name, "Hardware monitor power meter accuracy, as a ratio", MetricType::kGauge, 1,
                   1e6};
  }
  if (type == "power" && (element == "average_interval" || element == "average_interval_min" ||
                          element == "average_interval_max")) {
    return Reading{name + "_seconds",
                   "Hardware monitor power usage update interval (" + element + ")",
                   MetricType::kGauge, 0.001};
  }
  if (type == "power") {
    return Reading{name + "_watt", "Hardware monitor for power usage in watts (" + element + ")",
                   MetricType::kGauge, 1, 1e6};
  }
  if (type == "humidity") {
    return Reading{name,
                   "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the "
                   "humidity as a percentage) (" +
                       element + ")",
                   MetricType::kGauge, 1, 1e6};
  }
  if (type == "fan" &&
      (element == "input" || element == "min" || element == "max" || element == "target")) {
    return Reading{name + "_rpm",
                   "Hardware monitor for fan revolutions per minute (" + element + ")"};
  }
  return Reading{name, "Hardware monitor " + t + " element " + element};
}

class HwmonCollector final : public Collector {
 public:
  explicit HwmonCollector(const HostPaths& paths)
      : class_dir_(joinPath(paths.sysfs, "class/hwmon")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    for (const Chip& chip : chips_) {
      if (!chip.name.empty()) {
        MetricBatch::add(
            out.family("node_hwmon_chip_names", "Annotation metric for human-readable chip names",
                       MetricType::kGauge),
            {{"chip", chip.label}, {"chip_name", chip.name}}, 1);
      }
    }
    for (const Chip& chip : chips_) {
      for (const Sensor& sensor : chip.sensors) {
        if (sensor.label) {
          MetricBatch::add(out.family("node_hwmon_sensor_label", "Label for given chip and sensor",
                                      MetricType::kGauge),
                           {{"chip", chip.label}, {"label", *sensor.label}, {"sensor", sensor.id}},
                           1);
        }
      }
    }
    for (Chip& chip : chips_) {
      for (Sensor& sensor : chip.sensors) {
        for (Value& v : sensor.values) {
          // A file that cannot be read this cycle, or holds no number (a fan that is not
          // connected can say so in words): that series is left out.
          if (!v.file->tryRead(buf_)) {
            continue;
          }
          std::string_view text(buf_);
          while (!text.empty() && text.back() == '\n') {
            text.remove_suffix(1);
          }
          double value = 0;
          if (v.reading.beep_enable) {
            value = text == "1" ? 1 : 0;
          } else {
            const auto parsed = parseDouble(text);
            if (!parsed) {
              continue;
            }
            // Multiplied or divided as node_exporter does, for the same double.
            value = *parsed;
            if (v.reading.multiply != 1) {
              value *= v.reading.multiply;
            }
            if (v.reading.divide != 1) {
              value /= v.reading.divide;
            }
          }
          MetricBatch::add(out.family(v.reading.family, v.reading.help, v.reading.type),
                           {{"chip", chip.label}, {"sensor", sensor.id}}, value);
        }
      }
    }
    return Status::ok();
  }

 private:
  struct Value {
    Reading reading;
    std::unique_ptr<ProcFile> file;
  };
  struct Sensor {
    std::string id;  // "temp1", "fan2", "beep_enable0"
    std::optional<std::string> label;
    std::vector<Value> values;
  };
  struct Chip {
    std::string label;  // node_exporter's chip label
    std::string name;   // its name file, cleaned; empty if none
    std::vector<Sensor> sensors;
  };

  // node_exporter's chip label: the device's parent directory and name ("platform_coretemp_0",
  // "nvme_nvme0"), else the chip's name file, else the hwmon directory's own name.
  static std::string chipLabel(const std::string& dir, const std::string& name) {
    if (const std::string device = realPathOf(dir + "/device"); !device.empty()) {
      const std::string dev_name = cleanName(baseName(device));
      const std::string dev_type = cleanName(baseName(device.substr(0, device.rfind('/'))));
      if (!dev_type.empty() && !dev_name.empty()) {
        return dev_type + "_" + dev_name;
      }
      if (!dev_name.empty()) {
        return dev_name;
      }
    }
    if (!name.empty()) {
      return name;
    }
    return cleanName(baseName(realPathOf(dir)));
  }

  void relist() {
    std::vector<Chip> chips;
    for (const std::string& entry : listDirectory(class_dir_)) {
      const std::string dir = class_dir_ + "/" + entry;
      struct stat st {};
      if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        continue;
      }
      Chip chip;
      chip.name = cleanName(readText(dir + "/name").value_or(""));
      chip.label = chipLabel(dir, chip.name);
      // Two directories with one label would give duplicate series: the first one is kept.
      if (chip.label.empty() || std::any_of(chips.begin(), chips.end(),
                                            [&](const Chip& c) { return c.label == chip.label; })) {
        continue;
      }
      // Property -> file, per sensor, from the chip's directory and then its device's (where
      // older drivers keep them; a property in both is the device's).
      std::map<std::string, std::map<std::string, std::string>> files;
      std::map<std::string, std::string> types;
      for (const std::string& where : {dir, dir + "/device"}) {
        for (const std::string& file : listDirectory(where)) {
          std::string_view type;
          std::string_view property;
          unsigned number = 0;
          if (!splitSensorFile(file, type, number, property) ||
              std::find(kSensorTypes.begin(), kSensorTypes.end(), type) == kSensorTypes.end()) {
            continue;
          }
          const std::string id = std::string(type) + std::to_string(number);
          files[id][std::string(property)] = where + "/" + file;
          types[id] = std::string(type);
        }
      }
      for (auto& [id, properties] : files) {
        Sensor sensor;
        sensor.id = id;
        const bool has_bare = properties.count("") != 0;
        for (auto& [property, path] : properties) {
          if (property == "label") {
            sensor.label = readText(path);
            continue;
          }
          // Only files that can be read now: one that is not readable (write-only controls,
          // root-only values) would fail every cycle, and a device directory's "power" is a
          // directory, not a sensor.
          struct stat file_stat {};
          if (::stat(path.c_str(), &file_stat) != 0 || !S_ISREG(file_stat.st_mode) ||
              ::access(path.c_str(), R_OK) != 0) {
            continue;
          }
          if (auto reading = readingOf(types[id], property, has_bare)) {
            sensor.values.push_back(Value{std::move(*reading), std::make_unique<ProcFile>(path)});
          }
        }
        if (sensor.label || !sensor.values.empty()) {
          chip.sensors.push_back(std::move(sensor));
        }
      }
      chips.push_back(std::move(chip));
    }
    chips_ = std::move(chips);
  }

  std::string class_dir_;
  std::vector<Chip> chips_;
  // Chips come and go with modules and hotplug: listed again now and then. Between listings, a
  // cycle reads only the value files, which stay open.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeHwmonCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<HwmonCollector>(paths));
}

}  // namespace vigil::collectors::node
