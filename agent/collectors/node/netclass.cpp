// node_network_* device properties from /sys/class/net/<iface>, as node_exporter 1.5 exports
// them: numeric attributes as gauges (counters for the *_changes_total ones), text attributes
// in node_network_info. Attributes a device does not support (reads fail) are left out.
//
// Most attributes come from one rtnetlink dump a cycle rather than a sysfs read each (22 per
// device): the same values, with sysfs's rules for when one is absent. Netlink sees vigil's own
// network namespace and sysfs the one it was mounted in, so netlink is used only while the
// two list the same devices with the same indexes and addresses (checked whenever the list
// changes); otherwise, and for the attributes netlink does not carry, sysfs is read.
#include <dirent.h>
#include <linux/if.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>

#include "../common/proc_file.h"
#include "../common/rtnetlink.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// sysfs shows carrier and dormant only for a device that is up (netif_running).
bool running(const LinkAttributes& l) { return (l.flags & IFF_UP) != 0; }

template <typename T>
std::optional<double> valueOf(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

using FromLink = std::optional<double> (*)(const LinkAttributes&);

struct Property {
  const char* file;
  const char* name;  // node_network_<name>
  MetricType type;
  bool hex = false;
  FromLink from_link = nullptr;  // nullptr: netlink does not carry it, read from sysfs
  // Set when the device is made, or when its address is set: read from sysfs again only when
  // netlink shows another index or address for the name (and every kFixedRefreshCycles).
  bool fixed = false;
};
constexpr Property kProperties[] = {
    {"addr_assign_type", "address_assign_type", MetricType::kGauge, false, nullptr, true},
    {"carrier", "carrier", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return running(l) ? valueOf(l.carrier) : std::nullopt; }},
    {"carrier_changes", "carrier_changes_total", MetricType::kCounter, false,
     [](const LinkAttributes& l) { return valueOf(l.carrier_changes); }},
    {"carrier_down_count", "carrier_down_changes_total", MetricType::kCounter, false,
     [](const LinkAttributes& l) { return valueOf(l.carrier_down_count); }},
    {"carrier_up_count", "carrier_up_changes_total", MetricType::kCounter, false,
     [](const LinkAttributes& l) { return valueOf(l.carrier_up_count); }},
    {"dev_id", "device_id", MetricType::kGauge, true, nullptr, true},
    {"dormant", "dormant", MetricType::kGauge, false,
     [](const LinkAttributes& l) -> std::optional<double> {
       if (!running(l)) {
         return std::nullopt;
       }
       return (l.flags & IFF_DORMANT) != 0 ? 1 : 0;
     }},
    // sysfs shows dev->flags; netlink's flags are dev_get_flags(), which differ.
    {"flags", "flags", MetricType::kGauge, true},
    {"ifindex", "iface_id", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return std::optional<double>(l.index); }},
    {"iflink", "iface_link", MetricType::kGauge, false,
     [](const LinkAttributes& l) {
       return std::optional<double>(l.link ? static_cast<double>(*l.link) : l.index);
     }},
    {"link_mode", "iface_link_mode", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return valueOf(l.link_mode); }},
    {"mtu", "mtu_bytes", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return valueOf(l.mtu); }},
    {"name_assign_type", "name_assign_type", MetricType::kGauge, false, nullptr, true},
    {"netdev_group", "net_dev_group", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return valueOf(l.group); }},
    {"type", "protocol_type", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return std::optional<double>(l.type); }},
    {"speed", "speed_bytes", MetricType::kGauge},
    {"tx_queue_len", "transmit_queue_length", MetricType::kGauge, false,
     [](const LinkAttributes& l) { return valueOf(l.tx_queue_len); }},
};
constexpr std::size_t kIfindexProperty = 8;
static_assert(std::string_view(kProperties[kIfindexProperty].file) == "ifindex");
constexpr std::size_t kFlagsProperty = 7;
static_assert(std::string_view(kProperties[kFlagsProperty].file) == "flags");
constexpr std::size_t kSpeedProperty = 15;
static_assert(std::string_view(kProperties[kSpeedProperty].file) == "speed");

// node_network_info's labels besides device, in sysfs slots 0..4: operstate first.
constexpr const char* kInfoAttributes[] = {"operstate", "address", "broadcast", "duplex",
                                           "ifalias"};
constexpr std::size_t kOperstate = 0;
constexpr std::size_t kAddress = 1;
constexpr std::size_t kBroadcast = 2;
constexpr std::size_t kDuplex = 3;  // from the driver, through sysfs only
constexpr std::size_t kIfalias = 4;
constexpr std::size_t kFirstProperty = std::size(kInfoAttributes);
constexpr std::size_t kAttributes = kFirstProperty + std::size(kProperties);

// IF_OPER_* as sysfs names them; a state past the table has no text (sysfs fails the read).
constexpr const char* kOperstates[] = {"unknown", "notpresent", "down", "lowerlayerdown",
                                       "testing", "dormant",    "up"};

std::string_view operstateName(const std::optional<uint8_t>& state) {
  if (!state || *state >= std::size(kOperstates)) {
    return {};
  }
  return kOperstates[*state];
}

// One device's values this cycle.
struct DeviceReading {
  std::array<std::string, std::size(kInfoAttributes)> info;
  std::array<std::optional<double>, std::size(kProperties)> values;
};

// A refresh of the links (LinkDumper::refresh): whether it succeeded, whether they changed.
struct LinkRefresh {
  bool ok = false;
  bool changed = true;
};

class NetclassCollector final : public Collector {
  using DeviceFiles = std::array<std::unique_ptr<ProcFile>, kAttributes>;

 public:
  explicit NetclassCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/net")) {
    for (const Property& p : kProperties) {
      names_.push_back(std::string("node_network_") + p.name);
      helps_.push_back(std::string("Network device property: ") + p.name);
    }
  }
  ~NetclassCollector() override {
    if (dir_stream_ != nullptr) {
      ::closedir(dir_stream_);
    }
  }
  NetclassCollector(const NetclassCollector&) = delete;
  NetclassCollector& operator=(const NetclassCollector&) = delete;

  Status collect(const CollectContext&, MetricBatch& out) override {
    refresh_.reset();
    if (!deviceListHolds()) {
      VIGIL_RETURN_IF_ERROR(listDevices());
      // Devices that went away: forget their open files and fixed properties.
      for (auto it = files_.begin(); it != files_.end();) {
        it = std::binary_search(devices_.begin(), devices_.end(), it->first) ? std::next(it)
                                                                             : files_.erase(it);
      }
      for (auto it = fixed_.begin(); it != fixed_.end();) {
        it = std::binary_search(devices_.begin(), devices_.end(), it->first) ? std::next(it)
                                                                             : fixed_.erase(it);
      }
    }
    const bool from_netlink = useNetlink();
    netlink_used_ = from_netlink;
    readings_.resize(devices_.size());
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      readDevice(d, from_netlink ? &dumper_.links()[by_name_[d]] : nullptr, readings_[d]);
    }

    auto& up = out.family("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.",
                          MetricType::kGauge);
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      MetricBatch::add(up, {{"device", devices_[d]}}, readings_[d].info[kOperstate] == "up");
    }
    auto& info = out.family("node_network_info",
                            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                            MetricType::kGauge);
    static_assert(std::size(kInfoAttributes) == 5);
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      const auto& text = readings_[d].info;
      MetricBatch::add(info,
                       {{"device", devices_[d]},
                        {kInfoAttributes[0], text[0]},
                        {kInfoAttributes[1], text[1]},
                        {kInfoAttributes[2], text[2]},
                        {kInfoAttributes[3], text[3]},
                        {kInfoAttributes[4], text[4]}},
                       1);
    }
    // One family at a time, all devices in each.
    for (std::size_t i = 0; i < std::size(kProperties); ++i) {
      MetricFamily* family = nullptr;
      for (std::size_t d = 0; d < devices_.size(); ++d) {
        if (const auto& value = readings_[d].values[i]) {
          if (family == nullptr) {
            family = &out.family(names_[i], helps_[i], kProperties[i].type);
          }
          MetricBatch::add(*family, {{"device", devices_[d]}}, *value);
        }
      }
    }
    return Status::ok();
  }

 private:
  // Reads device `d`'s attributes: from `link` those netlink carries, when given, and the
  // others from sysfs.
  void readDevice(std::size_t d, const LinkAttributes* link, DeviceReading& reading) {
    DeviceFiles& files = files_[devices_[d]];
    FixedProperties* fixed = link != nullptr ? &fixedProperties(d, *link) : nullptr;
    if (link != nullptr) {
      reading.info[kOperstate] = operstateName(link->operstate);
      reading.info[kAddress] = link->address;
      reading.info[kBroadcast] = link->broadcast;
      reading.info[kIfalias] = link->alias;
    }
    // duplex and speed come from the driver, through sysfs only: see askLinkSettings.
    const bool ask_driver = fixed == nullptr || fixed->askLinkSettings(*link);
    bool driver_answered = false;
    const bool reuse = fixed != nullptr && fixed->settled.holds(linksUnchanged());
    for (std::size_t i = 0; i < std::size(kInfoAttributes); ++i) {
      if (i == kDuplex && reuse) {
        reading.info[i] = fixed->settled.duplex;
      } else if (link == nullptr || (i == kDuplex && ask_driver)) {
        bool ok = false;
        reading.info[i] = readAttribute(files, d, i, kInfoAttributes[i], ok);
        driver_answered = driver_answered || (i == kDuplex && ok && !reading.info[i].empty());
      } else if (i == kDuplex) {
        reading.info[i].clear();
      }
    }
    for (std::size_t i = 0; i < std::size(kProperties); ++i) {
      const Property& p = kProperties[i];
      if (link != nullptr && p.from_link != nullptr) {
        reading.values[i] = p.from_link(*link);
      } else if (reuse && (i == kFlagsProperty || i == kSpeedProperty)) {
        reading.values[i] = i == kFlagsProperty ? fixed->settled.flags : fixed->settled.speed;
      } else if (fixed != nullptr && p.fixed) {
        reading.values[i] = fixed->values[i];
      } else if (i == kSpeedProperty && !ask_driver) {
        reading.values[i] = std::nullopt;
      } else {
        reading.values[i] = readProperty(files, d, i);
        driver_answered = driver_answered || (i == kSpeedProperty && reading.values[i]);
      }
    }
    if (fixed != nullptr && !reuse) {
      if (ask_driver) {
        fixed->answeredLinkSettings(*link, driver_answered);
      }
      fixed->settled.keep(reading.values[kFlagsProperty], reading.values[kSpeedProperty],
                          reading.info[kDuplex]);
    }
  }

  // Whether netlink announced no change of any link for this cycle (nor was a resync due).
  bool linksUnchanged() const { return refresh_ && refresh_->ok && !refresh_->changed; }

  // Device `d`'s fixed properties, read again when `link` (the same device, by name) shows
  // another index (a device made again under the name) or address, and every
  // kFixedRefreshCycles cycles (setting the same address again marks it as set).
  struct FixedProperties {
    int index = 0;
    std::string address;
    int cycles = 0;
    std::array<std::optional<double>, std::size(kProperties)> values;
    // The device's state when its driver last refused its link settings (duplex and speed),
    // while it stayed so; forgotten with the fixed properties.
    std::optional<std::tuple<unsigned, std::optional<uint8_t>, std::optional<uint8_t>>> refused_in;
    // What sysfs alone shows and changes with the device's state: its flags (netlink's are
    // dev_get_flags(), another mix) and the driver's duplex and speed. As last read, reused
    // while netlink announces no change of any link (setting a flag, promiscuity, carrier and
    // operstate changes are announced), and read again with the fixed properties, since a
    // driver may change its speed unannounced. Three system calls fewer a cycle for a device
    // that is up, one for one that is down.
    struct Settled {
      bool valid = false;
      std::optional<double> flags;
      std::optional<double> speed;
      std::string duplex;

      bool holds(bool links_unchanged) const { return valid && links_unchanged; }
      void keep(const std::optional<double>& new_flags, const std::optional<double>& new_speed,
                const std::string& new_duplex) {
        valid = true;
        flags = new_flags;
        speed = new_speed;
        duplex = new_duplex;
      }
    } settled;

    static auto stateOf(const LinkAttributes& link) {
      return std::make_tuple(link.flags, link.operstate, link.carrier);
    }
    // sysfs refuses the link settings (EINVAL) of a device that is down without asking the
    // driver, and a driver without them (lo, most virtual devices) refuses them every time:
    // asked again only once the device's state changes.
    bool askLinkSettings(const LinkAttributes& link) const {
      return (link.flags & IFF_UP) != 0 && refused_in != stateOf(link);
    }
    void answeredLinkSettings(const LinkAttributes& link, bool answered) {
      if (answered) {
        refused_in.reset();
      } else {
        refused_in = stateOf(link);
      }
    }
  };
  FixedProperties& fixedProperties(std::size_t d, const LinkAttributes& link) {
    auto [it, made] = fixed_.try_emplace(devices_[d]);
    FixedProperties& fixed = it->second;
    if (made || fixed.index != link.index || fixed.address != link.address ||
        ++fixed.cycles >= kFixedRefreshCycles) {
      fixed.index = link.index;
      fixed.address = link.address;
      fixed.cycles = 0;
      fixed.refused_in.reset();
      fixed.settled.valid = false;
      for (std::size_t i = 0; i < std::size(kProperties); ++i) {
        if (kProperties[i].fixed) {
          fixed.values[i] = readProperty(files_[devices_[d]], d, i);
        }
      }
    }
    return fixed;
  }

  std::optional<double> readProperty(DeviceFiles& files, std::size_t d, std::size_t i) {
    const Property& p = kProperties[i];
    bool ok = false;
    const std::string_view text = readAttribute(files, d, kFirstProperty + i, p.file, ok);
    if (!ok || text.empty()) {
      return std::nullopt;
    }
    double value = 0;
    if (p.hex) {
      value = static_cast<double>(std::strtoull(std::string(text).c_str(), nullptr, 16));
    } else {
      auto v = parseDouble(text);
      if (!v) {
        return std::nullopt;
      }
      value = *v;
    }
    if (std::string_view(p.file) == "speed") {
      value *= 1000 * 1000 / 8;  // Mbit/s to bytes/s; an unknown speed (-1) stays negative
    }
    return value;
  }

  // Attribute files stay open between cycles and are re-read with pread. The text is valid
  // until the next read. `slot` numbers the attributes: kInfoAttributes, then kProperties.
  std::string_view readAttribute(DeviceFiles& files, std::size_t d, std::size_t slot,
                                 const char* file, bool& ok) {
    auto& f = files[slot];
    if (f == nullptr) {
      f = std::make_unique<ProcFile>(dir_ + "/" + devices_[d] + "/" + file);
    }
    ok = f->tryRead(scratch_);
    std::string_view text = scratch_;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
      text.remove_suffix(1);
    }
    return text;
  }

  // Whether the last cycle's device list still holds, so that sysfs need not be listed: the
  // last cycle took netlink's word (its devices were sysfs's, one for one), and netlink has
  // announced no change of a link since (a device made, removed or renamed is one). sysfs is
  // listed anyway now and then (relisting_), which bounds how long a device that only sysfs
  // shows (two namespaces that agreed by chance, each with only lo) goes unseen.
  bool deviceListHolds() {
    const bool due = relisting_.due();
    if (due || !netlink_used_) {
      return false;
    }
    const LinkRefresh& refresh = refreshLinks();
    return refresh.ok && !refresh.changed;
  }

  // The links brought up to date (LinkDumper::refresh) once a cycle, however many ask.
  const LinkRefresh& refreshLinks() {
    if (!refresh_.has_value()) {
      refresh_.emplace();
      refresh_->ok = dumper_.refresh(refresh_->changed).isOk();
    }
    return *refresh_;
  }

  // Whether this cycle's attributes may come from netlink, which sees vigil's network
  // namespace, while sysfs shows the one it was mounted in. A sysfs of another namespace (a pod
  // with the host's /sys and its own network) disagrees every cycle: once that is confirmed for
  // an unchanged device list, the dump is skipped and only tried again every kRecheckCycles
  // cycles. A single disagreement is not trusted, since a device created or removed between the
  // directory read and the dump disagrees once too.
  bool useNetlink() {
    if (devices_ != checked_devices_) {
      checked_devices_ = devices_;
      disagreements_ = 0;
      identities_agree_ = false;
    }
    if (disagreements_ >= kConfirmations && ++cycles_skipped_ < kRecheckCycles) {
      return false;
    }
    cycles_skipped_ = 0;
    const bool agrees = netlinkAgrees();
    disagreements_ = agrees ? 0 : disagreements_ + 1;
    return agrees;
  }

  // Brings the links up to date (LinkDumper::refresh) and says whether they are the devices
  // sysfs lists (by_name_[d] is then device d's entry in dumper_.links()).
  bool netlinkAgrees() {
    // Dumped again only when a link changed (or a minute passed): most cycles reuse the last.
    const LinkRefresh& refresh = refreshLinks();
    if (!refresh.ok) {
      by_name_.clear();
      return false;
    }
    const std::vector<LinkAttributes>& links = dumper_.links();
    if (refresh.changed || by_name_.size() != links.size()) {
      by_name_.resize(links.size());
      for (std::size_t i = 0; i < by_name_.size(); ++i) {
        by_name_[i] = i;
      }
      std::sort(by_name_.begin(), by_name_.end(),
                [&links](std::size_t a, std::size_t b) { return links[a].name < links[b].name; });
    }
    if (links.size() != devices_.size()) {
      return false;
    }
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      if (links[by_name_[d]].name != devices_[d]) {
        return false;
      }
    }
    // Only an agreement is kept for the list: a failed check is repeated with the next dump.
    if (!identities_agree_) {
      identities_agree_ = sameDevicesInSysfs();
    }
    return identities_agree_;
  }

  // Devices of the same names can be other devices in another namespace (every namespace has
  // its lo, most an eth0): their indexes and hardware addresses tell them apart.
  bool sameDevicesInSysfs() {
    for (std::size_t d = 0; d < devices_.size(); ++d) {
      const LinkAttributes& link = dumper_.links()[by_name_[d]];
      DeviceFiles& files = files_[devices_[d]];
      bool ok = false;
      const auto index =
          parseUnsigned(readAttribute(files, d, kFirstProperty + kIfindexProperty, "ifindex", ok));
      if (!ok || !index || *index != static_cast<unsigned long long>(link.index)) {
        return false;
      }
      if (readAttribute(files, d, kAddress, "address", ok) != link.address || !ok) {
        return false;
      }
    }
    return true;
  }

  // The directory stays open and is read again from its start each cycle (sorted names in
  // devices_): devices come and go, but opening it costs a path lookup every cycle.
  Status listDevices() {
    if (dir_stream_ == nullptr) {
      dir_stream_ = ::opendir(dir_.c_str());
      if (dir_stream_ == nullptr) {
        return notFound(dir_ + ": " + std::strerror(errno));
      }
    } else {
      ::rewinddir(dir_stream_);
    }
    devices_.clear();
    errno = 0;
    while (const dirent* entry = ::readdir(dir_stream_)) {
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") {
        devices_.emplace_back(name);
      }
    }
    if (errno != 0) {
      const int err = errno;
      ::closedir(dir_stream_);
      dir_stream_ = nullptr;
      return notFound(dir_ + ": " + std::strerror(err));
    }
    std::sort(devices_.begin(), devices_.end());
    return Status::ok();
  }

  std::string dir_;
  DIR* dir_stream_ = nullptr;
  std::vector<std::string> devices_;
  std::vector<std::string> names_;  // per property: node_network_<name>
  std::vector<std::string> helps_;
  // Per device, its attribute files by slot, and its fixed properties while netlink is used.
  std::map<std::string, DeviceFiles> files_;
  static constexpr int kFixedRefreshCycles = 60;
  std::map<std::string, FixedProperties, std::less<>> fixed_;
  std::string scratch_;
  std::vector<DeviceReading> readings_;  // per device, this cycle
  LinkDumper dumper_;
  std::vector<std::size_t> by_name_;  // dumper_.links() in devices_' (name) order
  // Netlink against sysfs for the device list in checked_devices_: whether their indexes and
  // addresses agreed, how many cycles in a row they disagreed, and how many dumps were skipped
  // since the last.
  static constexpr int kConfirmations = 2;
  static constexpr int kRecheckCycles = 10;
  std::vector<std::string> checked_devices_;
  bool identities_agree_ = false;
  int disagreements_ = 0;
  int cycles_skipped_ = 0;
  // deviceListHolds(): whether the last cycle used netlink, and when sysfs is listed anyway.
  bool netlink_used_ = false;
  PeriodicListing relisting_;
  std::optional<LinkRefresh> refresh_;  // this cycle's, once made (refreshLinks)
};

}  // namespace

Result<CollectorPtr> makeNetclassCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetclassCollector>(paths));
}

}  // namespace vigil::collectors::node
