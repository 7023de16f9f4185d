#include "model/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "model/atomic_file.h"
#include "model/read_file.h"
#include "runtime/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");

namespace caption {
namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";

// A validated header entry: where its bytes are and how to widen them.
struct Entry {
  const std::string* name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// A SAX pass over the header that records the top-level keys in order and stops at the first
// duplicate key of any object: nlohmann's DOM silently keeps one of the two, std::map forgets the
// order, ordered_json makes each insert a linear scan and a parser callback rescans the parent
// object after each child, so on files with thousands of tensors those are all quadratic.
struct HeaderKeys : nlohmann::json_sax<json> {
  std::vector<std::string> top_keys;
  std::vector<std::unordered_set<std::string>> open_keys;  // keys of the open object at each depth
  size_t depth = 0;                                         // open objects and arrays
  std::string duplicate, error;
  bool duplicate_is_top = false;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    if (open_keys.size() <= depth) open_keys.resize(depth + 1);
    open_keys[depth++].clear();
    return true;
  }
  bool key(string_t& k) override {
    if (!open_keys[depth - 1].insert(k).second) {
      duplicate = k, duplicate_is_top = depth == 1;
      return false;
    }
    if (depth == 1) top_keys.push_back(k);
    return true;
  }
  bool end_object() override { return --depth, true; }
  bool start_array(std::size_t) override { return ++depth, true; }
  bool end_array() override { return --depth, true; }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) override {
    error = e.what();
    return false;
  }
};

json parse_header(const std::string& path, std::string_view text, std::vector<std::string>& top_keys) {
  HeaderKeys keys;
  if (!json::sax_parse(text.begin(), text.end(), &keys)) {
    if (!keys.duplicate.empty())
      throw InputError(path, keys.duplicate_is_top ? "duplicate tensor name '" + keys.duplicate + "'"
                                                   : "header has a duplicate key '" + keys.duplicate + "'");
    throw InputError(path, "header is not valid JSON: " + keys.error);
  }
  json header = json::parse(text.begin(), text.end());  // cannot fail: the SAX pass accepted it
  if (!header.is_object()) throw InputError(path, "header is not a JSON object");
  top_keys = std::move(keys.top_keys);
  return header;
}

// A JSON number that must be a non-negative integer; `what` names it in the error.
uint64_t non_negative(const std::string& path, const json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) throw InputError(path, what + " is negative");
  throw InputError(path, what + " is not an integer");
}

Entry parse_entry(const std::string& path, const std::string& name, const json& e, uint64_t buffer_size) {
  const std::string who = "tensor '" + name + "'";
  if (!e.is_object()) throw InputError(path, who + ": header entry is not an object");
  auto dt = e.find("dtype"), sh = e.find("shape"), off = e.find("data_offsets");
  if (dt == e.end() || !dt->is_string()) throw InputError(path, who + ": missing or non-string 'dtype'");
  if (sh == e.end() || !sh->is_array()) throw InputError(path, who + ": missing or non-array 'shape'");
  if (off == e.end() || !off->is_array() || off->size() != 2)
    throw InputError(path, who + ": 'data_offsets' must be an array [begin, end]");

  Entry out{&name, DType::F32, {}, 0, 0};
  const auto& dtype = dt->get_ref<const std::string&>();
  if (dtype == "F32") out.dtype = DType::F32;
  else if (dtype == "F16") out.dtype = DType::F16;
  else if (dtype == "BF16") out.dtype = DType::BF16;
  else throw InputError(path, who + ": unsupported dtype '" + dtype + "' (expected F32, F16 or BF16)");

  // numel is bounded by the buffer, so stop multiplying before uint64 could overflow.
  uint64_t numel = 1;
  for (const json& d : *sh) {
    uint64_t dim = non_negative(path, d, who + ": shape dimension");
    if (dim > uint64_t(std::numeric_limits<int64_t>::max()))
      throw InputError(path, who + ": shape dimension too large");
    out.shape.push_back(int64_t(dim));
    if (dim != 0 && numel > buffer_size / dim) numel = buffer_size + 1;  // saturate: too big anyway
    else numel *= dim;
  }
  out.begin = non_negative(path, (*off)[0], who + ": data offset");
  out.end = non_negative(path, (*off)[1], who + ": data offset");
  if (out.end < out.begin) throw InputError(path, who + ": data_offsets end is before begin");
  if (out.end > buffer_size)
    throw InputError(path, who + ": data_offsets [" + std::to_string(out.begin) + ", " + std::to_string(out.end) +
                               "] run past the data (" + std::to_string(buffer_size) + " bytes)");
  if (numel > buffer_size || numel * dtype_size(out.dtype) != out.end - out.begin)
    throw InputError(path, who + ": holds " + std::to_string(out.end - out.begin) + " bytes but its shape and " +
                               dtype + " need " +
                               (numel > buffer_size ? std::string("more")
                                                    : std::to_string(numel * dtype_size(out.dtype))));
  return out;
}

void widen(const Entry& e, const char* bytes, float* out) {
  const size_t n = (e.end - e.begin) / dtype_size(e.dtype);
  if (n == 0) return;  // an empty tensor's data() may be null, which memcpy must not see
  if (e.dtype == DType::F32) {
    std::memcpy(out, bytes, n * 4);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes + 2 * i, 2);
    out[i] = e.dtype == DType::F16 ? half_to_float(h) : bfloat16_to_float(h);
  }
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  const std::string file = read_file(path);
  if (file.size() < 8)
    throw InputError(path, "too short for a safetensors file (" + std::to_string(file.size()) + " bytes)");
  uint64_t header_len;
  std::memcpy(&header_len, file.data(), 8);
  if (header_len > file.size() - 8)
    throw InputError(path, "header length " + std::to_string(header_len) + " is larger than the file");
  const uint64_t buffer_size = file.size() - 8 - header_len;
  const char* buffer = file.data() + 8 + header_len;

  std::vector<std::string> keys;
  const json header = parse_header(path, std::string_view(file.data() + 8, header_len), keys);

  SafetensorsFile out;
  std::vector<Entry> entries;
  entries.reserve(keys.size());
  for (const std::string& key : keys) {
    const json& value = header.at(key);
    if (key == kMetadataKey) {
      if (!value.is_object()) throw InputError(path, "__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) throw InputError(path, "__metadata__ value for '" + k + "' is not a string");
        out.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    out.names.push_back(key);
    entries.push_back(parse_entry(path, key, value, buffer_size));
  }

  // Overlap check in n log n: sorted by begin, each tensor must start at or after the previous end.
  std::vector<const Entry*> by_offset;
  by_offset.reserve(entries.size());
  for (const Entry& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw InputError(path, "tensors '" + *by_offset[i - 1]->name + "' and '" + *by_offset[i]->name +
                                 "' overlap in the data");

  for (const Entry& e : entries) {
    Tensor t;
    t.shape = e.shape;
    t.data.resize((e.end - e.begin) / dtype_size(e.dtype));
    widen(e, buffer + e.begin, t.data.data());
    // Weights, features and optimizer state are all finite: a NaN or an infinity would not stop
    // a run but quietly spoil what it writes (a ReLU turns a NaN into 0), so it is refused here.
    const auto bad = std::find_if(t.data.begin(), t.data.end(), [](float x) { return !std::isfinite(x); });
    if (bad != t.data.end())
      throw InputError(path, "tensor '" + *e.name + "': non-finite value " + std::to_string(*bad) + " at index " +
                                 std::to_string(bad - t.data.begin()));
    out.tensors.emplace(*e.name, std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                       const std::function<void(size_t, float*)>& values,
                       const std::map<std::string, std::string>& metadata) {
  // The header is assembled by hand: linear in the number of tensors, and in the given order.
  std::string header = "{";
  auto quoted = [&](const std::string& s) {
    try {
      return json(s).dump();
    } catch (const json::type_error&) {
      throw InputError(path, "name or metadata is not valid UTF-8: '" + s + "'");
    }
  };
  if (!metadata.empty()) {
    header += quoted(kMetadataKey) + ":{";
    for (const auto& [k, v] : metadata) header += quoted(k) + ":" + quoted(v) + ",";
    header.back() = '}';
    header += ",";
  }
  std::unordered_set<std::string_view> seen;
  std::vector<uint64_t> numels;
  numels.reserve(specs.size());
  uint64_t offset = 0;
  for (const TensorSpec& t : specs) {
    const std::string who = "tensor '" + t.name + "'";
    if (t.name == kMetadataKey) throw InputError(path, "'__metadata__' cannot name a tensor");
    if (!seen.insert(t.name).second) throw InputError(path, "duplicate tensor name '" + t.name + "'");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw InputError(path, who + ": negative dimension");
      if (d > 0 && numel > (uint64_t(1) << 60) / uint64_t(d)) throw InputError(path, who + ": shape too large");
      numel *= uint64_t(d);
    }
    numels.push_back(numel);
    header += quoted(t.name) + ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + numel * 4) + "]},";
    offset += numel * 4;
  }
  if (header.size() > 1) header.pop_back();  // trailing comma
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  AtomicFile file(path);
  std::string chunk(8, '\0');
  const uint64_t header_len = header.size();
  std::memcpy(chunk.data(), &header_len, 8);
  chunk += header;
  std::vector<float> buffer;
  for (size_t i = 0; i < specs.size(); ++i) {
    buffer.resize(numels[i]);
    values(i, buffer.data());
    chunk.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() * sizeof(float));
    if (chunk.size() >= (size_t(1) << 20)) file.write(chunk), chunk.clear();  // a few syscalls per MB
  }
  file.write(chunk);
  file.commit();
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  specs.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    const std::string who = "tensor '" + name + "'";
    if (!t) throw InputError(path, who + ": null tensor");
    uint64_t numel = 1;
    for (int64_t d : t->shape) {
      if (d < 0) throw InputError(path, who + ": negative dimension");
      numel = d == 0 || numel <= t->data.size() / uint64_t(d) ? numel * uint64_t(d) : t->data.size() + 1;
    }
    if (numel != t->data.size())
      throw InputError(path, who + ": has " + std::to_string(t->data.size()) + " values but its shape needs " +
                                 (numel > t->data.size() ? std::string("more") : std::to_string(numel)));
    specs.push_back({name, t->shape});
  }
  write_safetensors(path, specs, [&](size_t i, float* dst) {
    const auto& data = tensors[i].second->data;
    std::copy(data.begin(), data.end(), dst);
  }, metadata);
}

const Tensor& find_tensor(const std::map<std::string, Tensor>& tensors, const std::string& name,
                          const std::vector<int64_t>& shape, const std::string& source) {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw InputError(source, "missing tensor '" + name + "'");
  if (it->second.shape != shape)
    throw InputError(source, "tensor '" + name + "' has shape " + shape_str(it->second.shape) + ", the model needs " +
                                 shape_str(shape));
  return it->second;
}

}  // namespace caption
