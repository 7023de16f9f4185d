#pragma once
// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then
// the tensor bytes; offsets count from the start of that byte buffer.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace caption {

struct SafetensorsFile {
  std::vector<std::string> names;               // tensor names in header order
  std::map<std::string, Tensor> tensors;        // converted to F32
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Accepts F32, F16 and BF16 tensors. Everything about the layout is checked (sizes, offsets in
// range and not overlapping, shapes, dtypes, duplicate names); any problem is an InputError
// naming the file and, where there is one, the tensor.
SafetensorsFile read_safetensors(const std::string& path);

// The tensor `name` of a weights file, which must have `shape`; otherwise an InputError naming
// `source`, the tensor and both shapes.
const Tensor& find_tensor(const std::map<std::string, Tensor>& tensors, const std::string& name,
                          const std::vector<int64_t>& shape, const std::string& source);

// Writes F32 tensors in the given order, packed, with the header padded by spaces to a multiple
// of 8 bytes so that the data is aligned. Atomic (see atomic_file.h).
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A tensor whose values are produced only when the file reaches them.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
// The same file, with tensor i's values written by values(i, dst) into dst (as many floats as
// its shape holds), in order: one tensor is held at a time, so files larger than memory can be
// written (caption features).
void write_safetensors(const std::string& path, const std::vector<TensorSpec>& specs,
                       const std::function<void(size_t, float*)>& values,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace caption
