// The parts of the CUDA execution model that selection_kernels.cuh uses, on the CPU, so the
// kernels' own code (indexing, reductions, barriers, the step loop of the cooperative kernel)
// runs and is checked without a GPU.
//
// Every CUDA thread is a fiber on one OS thread (started with makecontext, then switched with
// _setjmp/_longjmp, which skip the signal-mask system calls of swapcontext; build with
// -U_FORTIFY_SOURCE so glibc's checked longjmp does not object to the stack change). A fiber
// runs until it reaches a
// barrier (__syncthreads, a warp shuffle, grid.sync); the scheduler then resumes another one,
// in a shuffled order when DSSLAB_EMULATOR_SEED is set, so blocks drift ahead of each other
// as they may on a GPU. Execution is deterministic for a given seed. A barrier that some
// thread never reaches is reported as a deadlock instead of hanging. Between barriers a fiber
// runs alone, so this checks the algorithm and its barrier structure, not the GPU memory
// model.

#pragma once

#define DSSLAB_EMULATION 1

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(threads)
#define DSSLAB_DYNAMIC_SHARED(name) \
  unsigned char* name = cuda_on_cpu::current->block->shared.data()

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline dim3 threadIdx, blockIdx, gridDim, blockDim;

namespace cuda_on_cpu {

struct Fiber;

// Threads arriving wait until `expected` have arrived; exited threads leave the count.
class Barrier {
 public:
  explicit Barrier(int expected) : expected_(expected) {}
  void arrive_and_wait();
  void arrive_and_drop() {
    --expected_;
    if (expected_ > 0 && arrived_ == expected_) release();
  }

 private:
  void release();
  int expected_, arrived_ = 0;
  std::vector<Fiber*> waiting_;
};

struct Block {
  Block(int threads, size_t shared_bytes) : barrier(threads), shared(shared_bytes + 16) {
    for (int w = 0; w < threads / 32; ++w) warps.push_back(std::make_unique<Barrier>(32));
    lanes.resize(threads);
  }
  Barrier barrier;
  std::vector<unsigned char> shared;
  std::vector<std::unique_ptr<Barrier>> warps;
  std::vector<uint32_t> lanes;  // what each thread publishes in a shuffle
};

struct Fiber {
  ucontext_t start;  // used once, to enter the fiber's own stack
  jmp_buf resume;
  std::vector<char> stack;
  dim3 thread, block_index;
  Block* block = nullptr;
  bool started = false, waiting = false, done = false;
};

inline Fiber* current = nullptr;
inline jmp_buf scheduler;
inline Barrier* grid_barrier = nullptr;
inline std::function<void()> body;

inline void yield() {
  if (_setjmp(current->resume) == 0) _longjmp(scheduler, 1);
}

// Run `fiber` until it yields or finishes.
inline void resume(Fiber* fiber) {
  current = fiber;
  threadIdx = fiber->thread;
  blockIdx = fiber->block_index;
  if (_setjmp(scheduler) != 0) return;
  if (fiber->started) _longjmp(fiber->resume, 1);
  fiber->started = true;
  setcontext(&fiber->start);
}

inline void Barrier::arrive_and_wait() {
  if (++arrived_ == expected_) {
    release();
    return;
  }
  current->waiting = true;
  waiting_.push_back(current);
  yield();
}

inline void Barrier::release() {
  arrived_ = 0;
  for (Fiber* fiber : waiting_) fiber->waiting = false;
  waiting_.clear();
}

inline void fiber_main() {
  body();
  current->block->warps[current->thread.x / 32]->arrive_and_drop();
  current->block->barrier.arrive_and_drop();
  current->done = true;
  _longjmp(scheduler, 1);
}

// Resume runnable fibers until all are done; exit with a message on a deadlock.
inline void schedule(std::vector<std::unique_ptr<Fiber>>& fibers, std::mt19937* shuffle) {
  std::vector<Fiber*> order;
  for (auto& fiber : fibers) order.push_back(fiber.get());
  for (size_t finished = 0; finished < order.size();) {
    if (shuffle) std::shuffle(order.begin(), order.end(), *shuffle);
    bool progressed = false;
    finished = 0;
    for (Fiber* fiber : order) {
      if (fiber->done || fiber->waiting) {
        finished += fiber->done;
        continue;
      }
      resume(fiber);
      progressed = true;
      finished += fiber->done;
    }
    if (!progressed && finished < order.size()) {
      std::fprintf(stderr, "deadlock: threads wait at a barrier that others never reach\n");
      std::exit(3);
    }
  }
}

// Run the kernel on grid x threads emulated threads. Cooperative launches run every block at
// once (grid.sync needs them all); others run one block at a time.
template <typename Kernel, typename... Arguments>
void launch(dim3 grid, int threads, size_t shared_bytes, bool cooperative, Kernel kernel,
            Arguments... arguments) {
  gridDim = grid;
  blockDim = dim3(threads);
  const int blocks = static_cast<int>(grid.x * grid.y);
  Barrier whole_grid(blocks * threads);
  grid_barrier = &whole_grid;
  body = [&] { kernel(arguments...); };
  const char* seed = std::getenv("DSSLAB_EMULATOR_SEED");
  std::mt19937 random(seed ? std::strtoul(seed, nullptr, 10) : 0);
  const int batch = cooperative ? blocks : 1;
  for (int first = 0; first < blocks; first += batch) {
    std::vector<std::unique_ptr<Block>> states;
    std::vector<std::unique_ptr<Fiber>> fibers;
    for (int b = first; b < first + batch; ++b) {
      states.push_back(std::make_unique<Block>(threads, shared_bytes));
      for (int t = 0; t < threads; ++t) {
        auto fiber = std::make_unique<Fiber>();
        fiber->thread = dim3(t);
        fiber->block_index = dim3(b % grid.x, b / grid.x);
        fiber->block = states.back().get();
        fiber->stack.resize(1 << 18);
        getcontext(&fiber->start);
        fiber->start.uc_stack.ss_sp = fiber->stack.data();
        fiber->start.uc_stack.ss_size = fiber->stack.size();
        fiber->start.uc_link = nullptr;
        makecontext(&fiber->start, fiber_main, 0);
        fibers.push_back(std::move(fiber));
      }
    }
    schedule(fibers, seed ? &random : nullptr);
  }
  grid_barrier = nullptr;
}

// Every lane publishes `value`, then reads the one published by lane `source`.
template <typename T>
T exchange(T value, unsigned source) {
  static_assert(sizeof(T) == 4, "the emulated shuffles move 32-bit values");
  const unsigned warp = threadIdx.x / 32;
  uint32_t* lanes = current->block->lanes.data() + warp * 32;
  std::memcpy(&lanes[threadIdx.x % 32], &value, 4);
  current->block->warps[warp]->arrive_and_wait();
  T result;
  std::memcpy(&result, &lanes[source], 4);
  current->block->warps[warp]->arrive_and_wait();
  return result;
}

}  // namespace cuda_on_cpu

inline void __syncthreads() { cuda_on_cpu::current->block->barrier.arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned, T value, int mask) {
  return cuda_on_cpu::exchange(value, (threadIdx.x % 32) ^ mask);
}

template <typename T>
T __shfl_up_sync(unsigned, T value, unsigned delta) {
  const unsigned lane = threadIdx.x % 32;
  return cuda_on_cpu::exchange(value, lane >= delta ? lane - delta : lane);
}

template <typename T>
T __ldg(const T* address) {
  return *address;
}

template <typename T>
T __ldcg(const T* address) {
  return *address;
}

inline float atomicAdd(float* address, float value) {
  const float old = *address;
  *address = old + value;
  return old;
}

inline int __popc(unsigned value) { return __builtin_popcount(value); }
inline int __ffs(unsigned value) { return __builtin_ffs(static_cast<int>(value)); }
inline int min(int a, int b) { return a < b ? a : b; }
using std::isnan;

namespace cooperative_groups {
struct grid_group {
  void sync() { cuda_on_cpu::grid_barrier->arrive_and_wait(); }
};
inline grid_group this_grid() { return {}; }
}  // namespace cooperative_groups
