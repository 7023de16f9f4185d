#pragma once
#include <string>
#include <vector>

namespace caption::cli {

// Loss curves per epoch as a PNG: train in blue, validation in orange, y range labelled.
void write_loss_plot(const std::string& path, const std::vector<double>& train, const std::vector<double>& val);

}  // namespace caption::cli
