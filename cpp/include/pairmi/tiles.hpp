// Tiling of all pairs of variables and the OpenMP loop over tiles, shared by every estimator.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "pairmi/parallel.hpp"

namespace pairmi {

// Called by one thread between tiles with (tiles done, tiles in all); returning false stops the run.
using TileMonitor = std::function<bool(std::size_t, std::size_t)>;

// Rows r0..r1 x columns c0..c1 of one layer's pair matrix.
struct Tile {
  std::size_t layer, r0, r1, c0, c1;
};

// Tiles of size x width pairs (width: size unless given) covering every layer's rows x cols pairs;
// with `upper`, only tiles touching j >= i. Tiles start at columns that are multiples of width.
inline std::vector<Tile> make_tiles(std::size_t layers, std::size_t rows, std::size_t cols, bool upper,
                                    std::size_t size, std::size_t width = 0) {
  if (width == 0) width = size;
  std::vector<Tile> tiles;
  for (std::size_t l = 0; l < layers; ++l)
    for (std::size_t r0 = 0; r0 < rows; r0 += size)
      for (std::size_t c0 = upper ? r0 / width * width : 0; c0 < cols; c0 += width)
        tiles.push_back({l, r0, std::min(rows, r0 + size), c0, std::min(cols, c0 + width)});
  return tiles;
}

// Asks, from inside a long piece of work in a tile (one KSG pair of a million samples takes
// seconds), whether the run should stop: the calling thread runs the monitor, as between tiles,
// and every thread reads the flag the monitor's answer sets.
class StopCheck {
 public:
  StopCheck() = default;
  StopCheck(std::atomic<bool>* stop, const TileMonitor* monitor, const std::size_t* reported, std::size_t total)
      : stop_(stop), monitor_(monitor), reported_(reported), total_(total) {}

  bool operator()() const {
    if (stop_ == nullptr) return false;
    if (*monitor_ && thread_index() == 0 && !(*monitor_)(*reported_, total_)) stop_->store(true);
    return stop_->load(std::memory_order_relaxed);
  }

 private:
  std::atomic<bool>* stop_ = nullptr;
  const TileMonitor* monitor_ = nullptr;
  const std::size_t* reported_ = nullptr;
  std::size_t total_ = 0;
};

// Runs make_worker()(tile) for every tile, each thread with its own worker (its scratch memory).
// Tiles are fixed before threads start and each pair's value depends only on its tile, so results
// are identical for any thread count. The monitor runs on the calling thread: after each tile it
// finishes, and once at the end if its last call did not report all tiles done (the other threads
// may have taken every tile). Returns false if the monitor stopped the run. make_worker may take
// a StopCheck, for workers whose tiles hold long pieces of work.
template <class MakeWorker>
bool for_each_tile(const std::vector<Tile>& tiles, int threads, const TileMonitor& monitor, MakeWorker make_worker) {
  std::atomic<bool> stop{false};
  const long count = static_cast<long>(tiles.size());
  std::size_t reported = 0;  // written by the calling thread (thread 0) only
#pragma omp parallel num_threads(std::max(1, threads))
  {
    auto worker = [&] {
      if constexpr (std::is_invocable_v<MakeWorker, const StopCheck&>)
        return make_worker(StopCheck(&stop, &monitor, &reported, tiles.size()));
      else
        return make_worker();
    }();
#pragma omp for schedule(dynamic, 1)
    for (long k = 0; k < count; ++k) {
      if (stop.load(std::memory_order_relaxed)) continue;
      worker(tiles[static_cast<std::size_t>(k)]);
      if (monitor && thread_index() == 0 && !stop.load(std::memory_order_relaxed)) {
        // Tiles are handed out in order, so k + 1 approximates the number finished.
        reported = static_cast<std::size_t>(k) + 1;
        if (!monitor(reported, tiles.size())) stop.store(true, std::memory_order_relaxed);
      }
    }
  }
  (void)threads;
  if (monitor && !stop.load() && reported != tiles.size() && !monitor(tiles.size(), tiles.size())) stop.store(true);
  return !stop.load();
}

// Where a tile's values go: out is (layers, rows, ld) row-major; with `upper` (a variable set
// against itself) each value is mirrored to (j, i); `transposed` tiles (of y's variables against
// x's) write pair (i, j) to (j, i).
template <class Out>
struct PairWriter {
  Out* out;
  std::size_t rows, ld;
  bool upper;
  double scale;  // from nats to the requested units
  bool transposed = false;

  void operator()(const Tile& t, std::size_t i, std::size_t j, double nats) const {
    Out* o = out + t.layer * rows * ld;
    const Out v = static_cast<Out>(scale * nats);
    if (transposed) std::swap(i, j);
    o[i * ld + j] = v;
    if (upper) o[j * ld + i] = v;
  }
};

}  // namespace pairmi
