#pragma once
// Crash-safe file replacement: readers of `path` see either the old file or the whole new one.
#include <string>
#include <string_view>

namespace caption {

// Writes "<path>.tmp.<pid>" in the same folder, fsyncs it, renames it over `path` and fsyncs
// the folder. Throws InputError(path, reason) on failure and removes the temporary file; a
// partial file never appears at `path`.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace caption
