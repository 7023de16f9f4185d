#include "model/keras_import.h"

#include <filesystem>
#include <set>
#include <vector>

#include "runtime/error.h"

#if CAPTION_HAS_HDF5
#include <hdf5.h>
#endif

namespace caption {

#if CAPTION_HAS_HDF5
namespace {

// An HDF5 identifier, closed at scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  operator hid_t() const { return id_; }
  bool ok() const { return id_ >= 0; }
  hid_t release() {
    hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its error stack to stderr on every failed call; our errors say it in one line.
class SilenceHdf5 {
 public:
  SilenceHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// One convolution and the batch norm after it: Keras layer stem and torchvision names.
struct ConvSpec {
  std::string keras;                // "conv2_block1_1": layers keras + "_conv" and keras + "_bn"
  std::string torch_conv, torch_bn;  // "layer1.0.conv1", "layer1.0.bn1"
  int64_t kh, kw, cin, cout;
};

// ResNet50 by stage: [0] the stem, [1..4] Keras conv2..conv5 = torchvision layer1..layer4.
std::vector<std::vector<ConvSpec>> resnet50_specs() {
  std::vector<std::vector<ConvSpec>> stages = {{{"conv1", "conv1", "bn1", 7, 7, 3, 64}}};
  const int blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
  int64_t cin = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t w = widths[s];
    std::vector<ConvSpec> stage;
    for (int b = 0; b < blocks[s]; ++b) {
      const std::string k = "conv" + std::to_string(s + 2) + "_block" + std::to_string(b + 1) + "_";
      const std::string t = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int64_t in = b == 0 ? cin : 4 * w;
      if (b == 0) stage.push_back({k + "0", t + "downsample.0", t + "downsample.1", 1, 1, in, 4 * w});
      stage.push_back({k + "1", t + "conv1", t + "bn1", 1, 1, in, w});
      stage.push_back({k + "2", t + "conv2", t + "bn2", 3, 3, w, w});
      stage.push_back({k + "3", t + "conv3", t + "bn3", 1, 1, w, 4 * w});
    }
    stages.push_back(std::move(stage));
    cin = 4 * w;
  }
  return stages;
}

class Reader {
 public:
  explicit Reader(const std::string& path)
      : path_(path), file_(open_file(path), H5Fclose), root_(open_root(), H5Gclose) {}

  bool has_layer(const std::string& name) const { return layers_.count(name) > 0; }
  bool has_layer_prefix(const std::string& prefix) const {
    auto it = layers_.lower_bound(prefix);
    return it != layers_.end() && it->compare(0, prefix.size(), prefix) == 0;
  }

  // One weight of a layer, found by its role ("kernel", "bias", "gamma", ...) among the layer's
  // weight_names, with its shape checked; false when the layer has no weight with that role.
  bool find_weight(const std::string& layer, const std::string& role, const std::vector<int64_t>& shape,
                   std::vector<float>& out) {
    if (!has_layer(layer)) throw InputError(path_, "missing layer " + prefix_ + layer);
    Handle g(H5Gopen2(root_, layer.c_str(), H5P_DEFAULT), H5Gclose);
    std::vector<std::string> weight_names;
    if (!g.ok() || !read_strings(g, "weight_names", weight_names))
      throw InputError(path_, "layer " + prefix_ + layer + ": no weight_names attribute");
    // "conv1_conv/kernel:0" or deeper nestings: the role is the last component, before ':'.
    for (const auto& wn : weight_names) {
      std::string base = wn.substr(wn.rfind('/') + 1);
      if (base.substr(0, base.find(':')) != role) continue;
      out = read_dataset(g, wn, prefix_ + layer + "/" + wn, shape);
      return true;
    }
    return false;
  }

  std::vector<float> weight(const std::string& layer, const std::string& role, const std::vector<int64_t>& shape) {
    std::vector<float> out;
    if (!find_weight(layer, role, shape, out))
      throw InputError(path_, "missing dataset " + prefix_ + layer + "/" + role);
    return out;
  }

 private:
  std::vector<float> read_dataset(hid_t group, const std::string& rel, const std::string& name,
                                  const std::vector<int64_t>& shape) {
    Handle d(H5Dopen2(group, rel.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.ok()) throw InputError(path_, "missing dataset " + name);
    Handle space(H5Dget_space(d), H5Sclose);
    Handle type(H5Dget_type(d), H5Tclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(rank > 0 ? rank : 0);
    if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    std::vector<int64_t> got(dims.begin(), dims.end());
    if (got != shape)
      throw InputError(path_, "dataset " + name + ": expected shape " + shape_str(shape) + ", found " + shape_str(got));
    if (H5Tget_class(type) != H5T_FLOAT) throw InputError(path_, "dataset " + name + ": expected floating-point data");
    std::vector<float> data(size_t(H5Sget_simple_extent_npoints(space)));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) < 0)
      throw InputError(path_, "dataset " + name + ": cannot read");
    return data;
  }

  // A string-array attribute, fixed- or variable-length. Keras splits attributes too big for
  // an HDF5 object header into name0, name1, ...; those are concatenated.
  bool read_strings(hid_t obj, const std::string& name, std::vector<std::string>& out) {
    if (H5Aexists(obj, name.c_str()) > 0) return read_string_attr(obj, name, out), true;
    if (H5Aexists(obj, (name + "0").c_str()) <= 0) return false;
    for (int i = 0; H5Aexists(obj, (name + std::to_string(i)).c_str()) > 0; ++i)
      read_string_attr(obj, name + std::to_string(i), out);
    return true;
  }

  void read_string_attr(hid_t obj, const std::string& name, std::vector<std::string>& out) {
    Handle attr(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
    Handle type(H5Aget_type(attr), H5Tclose);
    Handle space(H5Aget_space(attr), H5Sclose);
    if (H5Tget_class(type) != H5T_STRING) throw InputError(path_, "attribute " + name + ": expected strings");
    const size_t n = size_t(H5Sget_simple_extent_npoints(space));
    if (H5Tis_variable_str(type) > 0) {
      std::vector<char*> ptrs(n, nullptr);
      // Read with the file's own type: HDF5 will not convert between ASCII and UTF-8.
      if (H5Aread(attr, type, ptrs.data()) < 0) throw InputError(path_, "attribute " + name + ": cannot read");
      for (char* p : ptrs) {
        out.push_back(p ? p : "");
        H5free_memory(p);
      }
    } else {
      const size_t len = H5Tget_size(type);
      std::vector<char> buf(n * len);
      if (H5Aread(attr, type, buf.data()) < 0) throw InputError(path_, "attribute " + name + ": cannot read");
      for (size_t i = 0; i < n; ++i) {
        std::string s(buf.data() + i * len, len);
        out.push_back(s.substr(0, s.find('\0')));  // null-padded
      }
    }
  }

  static hid_t open_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw InputError(path, "no such file");
    if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path, "not a regular file");
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) throw InputError(path, "not an HDF5 file (or unreadable)");
    return f;
  }

  // model.save_weights() puts the layers at the root; model.save() under "model_weights".
  hid_t open_root() {
    for (const char* where : {".", "model_weights"}) {
      if (where != std::string(".") && H5Lexists(file_, where, H5P_DEFAULT) <= 0) continue;
      Handle g(H5Gopen2(file_, where, H5P_DEFAULT), H5Gclose);
      std::vector<std::string> names;
      if (!g.ok() || !read_strings(g, "layer_names", names)) continue;
      prefix_ = where == std::string(".") ? "" : std::string(where) + "/";
      layers_.insert(names.begin(), names.end());
      return g.release();
    }
    throw InputError(path_, "not a Keras weights file (no layer_names attribute)");
  }

  // Declaration order is construction order: open_root() fills prefix_ and layers_.
  std::string path_;
  std::string prefix_;  // "model_weights/" or ""
  std::set<std::string> layers_;
  Handle file_, root_;
};

void import_conv(Reader& r, const ConvSpec& c, KerasImport& out) {
  const std::string conv = c.keras + "_conv", bn = c.keras + "_bn";
  const std::vector<float> hwio = r.weight(conv, "kernel", {c.kh, c.kw, c.cin, c.cout});
  std::vector<float> bias;
  const bool has_bias = r.find_weight(conv, "bias", {c.cout}, bias);  // Keras' default; use_bias=False has none

  Tensor& w = out.tensors[c.torch_conv + ".weight"];
  w.shape = {c.cout, c.cin, c.kh, c.kw};
  w.data.resize(hwio.size());
  for (int64_t h = 0; h < c.kh; ++h)
    for (int64_t x = 0; x < c.kw; ++x)
      for (int64_t i = 0; i < c.cin; ++i)
        for (int64_t o = 0; o < c.cout; ++o)
          w.data[((o * c.cin + i) * c.kh + h) * c.kw + x] = hwio[((h * c.kw + x) * c.cin + i) * c.cout + o];

  const std::pair<const char*, const char*> bn_names[4] = {
      {"gamma", "weight"}, {"beta", "bias"}, {"moving_mean", "running_mean"}, {"moving_variance", "running_var"}};
  for (const auto& [keras, torch] : bn_names) {
    Tensor& t = out.tensors[c.torch_bn + "." + torch];
    t.shape = {c.cout};
    t.data = r.weight(bn, keras, {c.cout});
  }
  // BN(conv(x) + b) with mean m equals BN(conv(x)) with mean m - b.
  if (has_bias)
    for (int64_t o = 0; o < c.cout; ++o) out.tensors[c.torch_bn + ".running_mean"].data[o] -= bias[o];
}

}  // namespace

KerasImport import_keras_resnet50(const std::string& h5_path) {
  SilenceHdf5 quiet;
  Reader r(h5_path);
  const auto stages = resnet50_specs();
  KerasImport out;
  // The stem and conv2..conv4 are required; conv5 is optional (a "C4" encoder) but, when any
  // of its layers is present, must be complete.
  out.stages = r.has_layer_prefix("conv5_") ? 5 : 4;
  for (int s = 0; s < out.stages; ++s)
    for (const auto& c : stages[s]) import_conv(r, c, out);
  return out;
}

#else

KerasImport import_keras_resnet50(const std::string& h5_path) {
  throw InputError(h5_path,
                   "cannot import Keras weights: this build of caption has no HDF5 support (HDF5 was not found)");
}

#endif

}  // namespace caption
