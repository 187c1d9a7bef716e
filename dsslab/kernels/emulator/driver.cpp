// Runs the kernels of selection_kernels.cuh on the CPU (see cuda_on_cpu.h) for dsslab's tests.
//
//   emulator greedy|gains|segment_sums DIRECTORY
//
// DIRECTORY holds meta.txt (the sizes and scalars, whitespace-separated, in the order read
// below) and raw little-endian arrays (*.f32, *.i64); results are written next to them.
// dsslab/kernels/emulator.py writes the inputs, runs this and reads the results.

#include "cuda_on_cpu.h"

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "../csrc/selection_kernels.cuh"

namespace {

constexpr int kSharedLimit = 232448;  // what an H100 or H200 block may opt into

template <typename T>
std::vector<T> read(const std::string& path, size_t count) {
  std::vector<T> values(count);
  std::ifstream file(path, std::ios::binary);
  if (!file.read(reinterpret_cast<char*>(values.data()), count * sizeof(T))) {
    throw std::runtime_error("cannot read " + std::to_string(count) + " values from " + path);
  }
  return values;
}

template <typename T>
void write(const std::string& path, const std::vector<T>& values) {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

float* data_or_null(std::vector<float>& values) {
  return values.empty() ? nullptr : values.data();
}

void greedy(const std::string& dir) {
  std::ifstream meta(dir + "/meta.txt");
  int samples, classes, dim, val_samples, budget, blocks;
  float eta;
  uint64_t seed;
  int64_t sample_size, pairwise_limit;
  meta >> samples >> classes >> dim >> val_samples >> budget >> eta >> seed >> sample_size >>
      pairwise_limit >> blocks;
  auto residuals = read<float>(dir + "/residuals.f32", size_t(samples) * classes);
  auto embeddings = read<float>(dir + "/embeddings.f32", size_t(samples) * dim);
  auto val_logits = read<float>(dir + "/val_logits.f32", size_t(val_samples) * classes);
  auto val_labels = read<int64_t>(dir + "/val_labels.i64", val_samples);
  auto val_embeddings = read<float>(dir + "/val_embeddings.f32", size_t(val_samples) * dim);

  dsslab::Problem p = dsslab::round_sizes(samples, classes, dim, val_samples, budget, eta, seed,
                                          sample_size, pairwise_limit);
  p.residuals = residuals.data();
  p.embeddings = data_or_null(embeddings);
  p.val_embeddings = data_or_null(val_embeddings);
  p.val_labels = val_labels.data();
  if (!dsslab::plan_shared_memory(p, kSharedLimit)) throw std::runtime_error("bitmap too big");
  const int grid = dsslab::plan_grid(p, blocks, 1 << 20);

  std::vector<float> val_residuals(val_logits.size()), gradient(2 * size_t(p.width));
  std::vector<float> partials(2 * size_t(grid) * p.partial_stride), best_gains(2 * grid);
  std::vector<int> pool(samples), position(samples), slots(2 * size_t(samples));
  std::vector<int> best_indices(2 * grid);
  std::vector<int64_t> picked(budget);
  std::vector<float> picked_gains(budget);
  for (int i = 0; i < samples; ++i) pool[i] = position[i] = i;
  p.val_logits = val_logits.data();
  p.val_residuals = val_residuals.data();
  p.pool = pool.data();
  p.position = position.data();
  p.slots = slots.data();
  p.partials = partials.data();
  p.gradient = gradient.data();
  p.best_gains = best_gains.data();
  p.best_indices = best_indices.data();
  p.picked = picked.data();
  p.picked_gains = picked_gains.data();

  cuda_on_cpu::launch(dim3(grid), dsslab::kThreads, dsslab::shared_bytes(p), true,
                      dsslab::greedy_round_kernel, p);
  write(dir + "/picked.i64", picked);
  write(dir + "/gains.f32", picked_gains);
  std::ofstream layout(dir + "/layout.txt");
  layout << grid << ' ' << p.rows_per_block << ' ' << p.gradient_in_shared << ' '
         << p.local_gradient << '\n';
}

void gains(const std::string& dir) {
  std::ifstream meta(dir + "/meta.txt");
  int samples, classes, dim;
  meta >> samples >> classes >> dim;
  auto residuals = read<float>(dir + "/residuals.f32", size_t(samples) * classes);
  auto embeddings = read<float>(dir + "/embeddings.f32", size_t(samples) * dim);
  auto target_bias = read<float>(dir + "/target_bias.f32", classes);
  auto target_weight = read<float>(dir + "/target_weight.f32", size_t(classes) * dim);
  std::vector<float> gains(samples);
  const int blocks = (samples + dsslab::kWarps - 1) / dsslab::kWarps;
  cuda_on_cpu::launch(dim3(blocks), dsslab::kThreads, 0, false, dsslab::gains_kernel,
                      residuals.data(), data_or_null(embeddings), target_bias.data(),
                      data_or_null(target_weight), samples, classes, dim, gains.data());
  write(dir + "/gains.f32", gains);
}

void segment_sums(const std::string& dir) {
  std::ifstream meta(dir + "/meta.txt");
  int samples, classes, dim, groups, weighted;
  meta >> samples >> classes >> dim >> groups >> weighted;
  auto residuals = read<float>(dir + "/residuals.f32", size_t(samples) * classes);
  auto embeddings = read<float>(dir + "/embeddings.f32", size_t(samples) * dim);
  auto order = read<int64_t>(dir + "/order.i64", samples);
  auto sorted_groups = read<int64_t>(dir + "/sorted_groups.i64", samples);
  auto weights = read<float>(dir + "/weights.f32", weighted ? samples : 0);
  std::vector<float> bias_sums(size_t(groups) * classes);
  std::vector<float> weight_sums(size_t(groups) * classes * dim);
  const int width = classes * (1 + dim);
  const dim3 grid((samples + dsslab::kChunk - 1) / dsslab::kChunk,
                  (width + dsslab::kThreads - 1) / dsslab::kThreads);
  cuda_on_cpu::launch(grid, dsslab::kThreads, 0, false, dsslab::segment_sums_kernel,
                      residuals.data(), data_or_null(embeddings), order.data(),
                      sorted_groups.data(), data_or_null(weights), samples, classes, dim,
                      bias_sums.data(), data_or_null(weight_sums));
  write(dir + "/bias_sums.f32", bias_sums);
  write(dir + "/weight_sums.f32", weight_sums);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s greedy|gains|segment_sums DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::string command = argv[1], dir = argv[2];
  try {
    if (command == "greedy") {
      greedy(dir);
    } else if (command == "gains") {
      gains(dir);
    } else if (command == "segment_sums") {
      segment_sums(dir);
    } else {
      std::fprintf(stderr, "unknown command %s\n", command.c_str());
      return 2;
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
    return 1;
  }
  return 0;
}
