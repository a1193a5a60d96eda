#include "server/batcher.h"

#include <algorithm>
#include <cstring>

namespace switchyard::serve {

// An execution slot: its own infer request, its own stacking buffers (grown to the largest batch seen,
// then reused: no allocation per request once warm) and its own expert counters (written only by the
// thread executing on the slot, summed when /metrics is read).
struct DynamicBatcher::Slot {
  explicit Slot(const CompiledModel& model) : request(model.create_infer_request()) {}
  InferRequest request;
  std::vector<Tensor> buffers;  // per input: capacity in elements of the input's dtype
  std::vector<std::unique_ptr<InferJob>> batch;  // the jobs of the execution at hand (capacity kept)
  struct ExpertCounters {
    std::string layer;
    size_t experts = 0;
    std::unique_ptr<std::atomic<uint64_t>[]> tokens;
  };
  std::vector<ExpertCounters> experts;
  std::atomic<bool> experts_ready{false};  // `experts` is laid out (after the first execution)
};

DynamicBatcher::DynamicBatcher(CompiledModel model, BatchingConfig config, ModelMetrics& metrics)
    : model_(std::move(model)), config_(std::move(config)), metrics_(metrics) {
  if (!config_.enabled) config_.max_batch_size = 1;
  if (config_.max_queue_size == 0) config_.max_queue_size = 1024;
  std::sort(config_.preferred_batch_sizes.begin(), config_.preferred_batch_sizes.end());
  run_inline_ = !config_.enabled || config_.max_queue_delay_us <= 0;
  const int slots = std::max(1, model_.streams());
  for (int i = 0; i < slots; ++i) {
    slots_.push_back(std::make_unique<Slot>(model_));
    slots_.back()->buffers.resize(model_.inputs().size());
    idle_slots_.push_back(slots_.back().get());
  }
  if (!run_inline_)
    for (auto& slot : slots_) {
      Slot* s = slot.get();
      workers_.emplace_back([this, s] { run_worker(*s); });
    }
}

DynamicBatcher::~DynamicBatcher() { stop(); }

bool DynamicBatcher::submit(std::unique_ptr<InferJob>& job, bool execute_now) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_ || queue_.size() >= config_.max_queue_size) return false;
  metrics_.pending_requests.fetch_add(1, std::memory_order_relaxed);
  queued_rows_ += job->rows;
  queue_.push_back(std::move(job));
  if (!run_inline_) {
    lock.unlock();
    queued_.notify_one();
    return true;
  }
  // Every slot busy: one of them takes this job when its batch ends (slots drain the queue).
  if (!execute_now || idle_slots_.empty()) return true;
  Slot* slot = idle_slots_.back();
  idle_slots_.pop_back();
  drain(*slot, lock);
  return true;
}

void DynamicBatcher::run_queued() {
  if (!run_inline_) return;
  std::unique_lock<std::mutex> lock(mutex_);
  if (queue_.empty() || idle_slots_.empty()) return;
  Slot* slot = idle_slots_.back();
  idle_slots_.pop_back();
  drain(*slot, lock);
}

void DynamicBatcher::drain(Slot& slot, std::unique_lock<std::mutex>& lock) {
  while (!queue_.empty()) {
    take_batch(slot.batch);
    lock.unlock();
    execute(slot, slot.batch);
    slot.batch.clear();
    lock.lock();
  }
  idle_slots_.push_back(&slot);
  slot_returned_.notify_all();
}

void DynamicBatcher::stop() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  lock.unlock();
  queued_.notify_all();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  lock.lock();
  if (!run_inline_) return;
  // Jobs queued for a later run_queued() that never came: run them here.
  if (!queue_.empty() && !idle_slots_.empty()) {
    Slot* slot = idle_slots_.back();
    idle_slots_.pop_back();
    drain(*slot, lock);
  }
  slot_returned_.wait(lock, [&] { return idle_slots_.size() == slots_.size(); });
}

void DynamicBatcher::take_batch(std::vector<std::unique_ptr<InferJob>>& batch) {
  // The first queued job opens the batch; later ones join while they fit and have its shapes past dim 0
  // (the others stay queued, in order, for the next execution).
  batch.push_back(std::move(queue_.front()));
  queue_.pop_front();
  queued_rows_ -= batch[0]->rows;
  if (!config_.enabled) return;
  int64_t rows = batch[0]->rows;
  int64_t limit = config_.max_batch_size;
  // With preferred sizes, cut at the largest preferred size the queue can fill.
  if (!config_.preferred_batch_sizes.empty()) {
    const int64_t available = rows + queued_rows_;
    for (auto it = config_.preferred_batch_sizes.rbegin(); it != config_.preferred_batch_sizes.rend(); ++it)
      if (*it <= available && *it <= limit) {
        limit = *it;
        break;
      }
  }
  const InferJob& head = *batch[0];
  for (auto it = queue_.begin(); it != queue_.end() && rows < limit;) {
    InferJob& job = **it;
    bool same = rows + job.rows <= limit;
    for (size_t i = 0; same && i < job.inputs.size(); ++i) {
      const Shape& a = job.inputs[i].shape();
      const Shape& b = head.inputs[i].shape();
      same = a.size() == b.size() && std::equal(a.begin() + 1, a.end(), b.begin() + 1);
    }
    if (!same) {
      ++it;
      continue;
    }
    rows += job.rows;
    queued_rows_ -= job.rows;
    batch.push_back(std::move(*it));
    it = queue_.erase(it);
  }
}

void DynamicBatcher::run_worker(Slot& slot) {
  std::vector<std::unique_ptr<InferJob>>& batch = slot.batch;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    if (config_.enabled && config_.max_queue_delay_us > 0) {
      // Wait for a full batch at most until the oldest request has waited max_queue_delay_us.
      const int64_t target = config_.preferred_batch_sizes.empty()
                                 ? config_.max_batch_size
                                 : std::min(config_.max_batch_size, config_.preferred_batch_sizes.back());
      const auto until = queue_.front()->arrival + std::chrono::microseconds(config_.max_queue_delay_us);
      while (!stopping_ && !queue_.empty() && queued_rows_ < target && Clock::now() < until)
        queued_.wait_until(lock, until);
      if (queue_.empty()) continue;  // another worker took them
    }
    take_batch(batch);
    lock.unlock();
    execute(slot, batch);
    batch.clear();
    lock.lock();
  }
}

void DynamicBatcher::finish(InferJob& job, const JobResult& result) {
  const auto now = Clock::now();
  job.done(job, result);
  metrics_.pending_requests.fetch_sub(1, std::memory_order_relaxed);
  if (result.status == JobStatus::kOk) {
    const double us = std::chrono::duration<double, std::micro>(now - job.arrival).count();
    metrics_.request_success.fetch_add(1, std::memory_order_relaxed);
    metrics_.request_duration_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
    metrics_.request_us.observe(us);
  } else {
    metrics_.record_failure();
  }
}

void DynamicBatcher::execute(Slot& slot, std::vector<std::unique_ptr<InferJob>>& batch) {
  // Requests whose deadline passed in the queue are answered without running.
  const auto now = Clock::now();
  size_t live = 0;
  for (auto& job : batch) {
    if (job->deadline < now) {
      finish(*job, {JobStatus::kTimeout, "request timed out after waiting " +
                                             std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                                                now - job->arrival).count()) + " us in the queue", {}});
      continue;
    }
    batch[live++] = std::move(job);
  }
  batch.resize(live);
  if (batch.empty()) return;
  std::string error;
  if (execute_stacked(slot, batch.data(), batch.size(), error)) return;
  if (batch.size() == 1) {
    finish(*batch[0], {JobStatus::kBadRequest, error, {}});
    return;
  }
  // One request of the batch made the model fail: run each alone, so only that one gets the error.
  for (auto& job : batch)
    if (!execute_stacked(slot, &job, 1, error)) finish(*job, {JobStatus::kBadRequest, error, {}});
}

bool DynamicBatcher::execute_stacked(Slot& slot, std::unique_ptr<InferJob>* first, size_t count,
                                     std::string& error) {
  const auto& ports = model_.inputs();
  int64_t rows = 0;
  for (size_t j = 0; j < count; ++j) rows += first[j]->rows;
  const auto start = Clock::now();
  try {
    for (size_t i = 0; i < ports.size(); ++i) {
      const Tensor& head = first[0]->inputs[i];
      Shape shape = head.shape();
      if (count > 1) shape[0] = rows;
      const int64_t numel = checked_numel(shape);
      Tensor& buffer = slot.buffers[i];
      if (!buffer.defined() || buffer.dtype() != head.dtype() || buffer.numel() < numel)
        buffer = Tensor(head.dtype(), {std::max<int64_t>(numel, 1)});
      char* dst = static_cast<char*>(buffer.raw());
      for (size_t j = 0; j < count; ++j) {
        const Tensor& in = first[j]->inputs[i];
        std::memcpy(dst, in.raw(), in.nbytes());
        dst += in.nbytes();
      }
      slot.request.set_input(ports[i].name, Tensor::wrap(head.dtype(), shape, buffer.raw()));
    }
    slot.request.infer();
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  const auto end = Clock::now();
  const double compute_us = std::chrono::duration<double, std::micro>(end - start).count();
  metrics_.exec_count.fetch_add(1, std::memory_order_relaxed);
  metrics_.inference_count.fetch_add(static_cast<uint64_t>(rows), std::memory_order_relaxed);
  metrics_.batch_size.observe(static_cast<double>(rows));

  // Expert load of this execution.
  const auto counts = slot.request.expert_counts();
  if (!slot.experts_ready.load(std::memory_order_relaxed)) {
    for (const auto& [layer, t] : counts) {
      Slot::ExpertCounters c;
      c.layer = layer;
      c.experts = static_cast<size_t>(t.numel());
      c.tokens.reset(new std::atomic<uint64_t>[c.experts]);
      for (size_t e = 0; e < c.experts; ++e) c.tokens[e].store(0, std::memory_order_relaxed);
      slot.experts.push_back(std::move(c));
    }
    slot.experts_ready.store(true, std::memory_order_release);
  }
  for (size_t l = 0; l < counts.size() && l < slot.experts.size(); ++l) {
    const Tensor& t = counts[l].second;
    for (size_t e = 0; e < slot.experts[l].experts && e < static_cast<size_t>(t.numel()); ++e)
      slot.experts[l].tokens[e].fetch_add(static_cast<uint64_t>(t.as_int64(static_cast<int64_t>(e))),
                                            std::memory_order_relaxed);
  }

  int64_t offset = 0;
  for (size_t j = 0; j < count; ++j) {
    InferJob& job = *first[j];
    JobResult result;
    result.outputs.reserve(job.outputs.size());
    for (size_t o : job.outputs) {
      const Tensor& out = slot.request.output(o);
      if (count == 1) {
        result.outputs.push_back(out);
      } else if (out.rank() == 0 || out.dim(0) != rows) {
        result.status = JobStatus::kBadRequest;
        result.error = "output '" + model_.outputs()[o].name + "' has no batch dimension to split";
        break;
      } else {
        result.outputs.push_back(out.slice(offset, job.rows));
      }
    }
    const double queued_us = std::chrono::duration<double, std::micro>(start - job.arrival).count();
    metrics_.queue_duration_us.fetch_add(static_cast<uint64_t>(queued_us), std::memory_order_relaxed);
    metrics_.compute_infer_duration_us.fetch_add(static_cast<uint64_t>(compute_us), std::memory_order_relaxed);
    metrics_.queue_us.observe(queued_us);
    metrics_.compute_us.observe(compute_us);
    finish(job, result);
    offset += job.rows;
  }
  return true;
}

std::vector<ExpertLoad> DynamicBatcher::expert_load() const {
  std::vector<ExpertLoad> total;
  for (const auto& w : slots_) {
    if (!w->experts_ready.load(std::memory_order_acquire)) continue;
    for (size_t l = 0; l < w->experts.size(); ++l) {
      const auto& c = w->experts[l];
      if (total.size() <= l) total.push_back({c.layer, std::vector<uint64_t>(c.experts, 0)});
      for (size_t e = 0; e < c.experts && e < total[l].tokens.size(); ++e)
        total[l].tokens[e] += c.tokens[e].load(std::memory_order_relaxed);
    }
  }
  return total;
}

}  // namespace switchyard::serve
