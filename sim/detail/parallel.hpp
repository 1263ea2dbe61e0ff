// oneTBB loops that ThreadSanitizer can follow.
//
// Debian's libtbb is not built with ThreadSanitizer, so the hand-over of a task from the
// thread that spawns it to the worker that runs it, and back at the join, happens where TSan
// cannot see it. TSan then reports every read, in a worker, of data the spawning thread wrote
// before the loop. Under `-fsanitize=thread` these helpers state the hand-over explicitly:
// release before a loop, acquire when a task starts, release when it ends, acquire after the
// loop (the standard annotation of a thread pool). Elsewhere they compile to the plain calls.
// Tasks that truly overlap in time still race visibly: a task acquires only what earlier
// tasks released.
#pragma once

#include <oneapi/tbb/parallel_for.h>

// GCC defines __SANITIZE_THREAD__; Clang answers __has_feature(thread_sanitizer).
#if defined(__SANITIZE_THREAD__)
#define STOPSCAN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STOPSCAN_TSAN 1
#endif
#endif

#if defined(STOPSCAN_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace stopscan::detail {

#if defined(STOPSCAN_TSAN)
inline char tsan_handoff_token;
inline void tsan_release() {
    __tsan_release(&tsan_handoff_token);
}
inline void tsan_acquire() {
    __tsan_acquire(&tsan_handoff_token);
}
#else
inline void tsan_release() {}
inline void tsan_acquire() {}
#endif

/// Marks the body of a task: everything released before it started is visible in it, and
/// everything it did is visible to whoever acquires after it ends.
struct TsanTask {
    TsanTask() { tsan_acquire(); }
    ~TsanTask() { tsan_release(); }
    TsanTask(const TsanTask&) = delete;
    TsanTask& operator=(const TsanTask&) = delete;
};

/// Marks a parallel loop in the spawning thread: release on entry, acquire on exit (also when
/// the loop throws).
struct TsanForkJoin {
    TsanForkJoin() { tsan_release(); }
    ~TsanForkJoin() { tsan_acquire(); }
    TsanForkJoin(const TsanForkJoin&) = delete;
    TsanForkJoin& operator=(const TsanForkJoin&) = delete;
};

/// A first member of an object that oneTBB allocates from its own memory pool (a reduction
/// body, a pipeline item): when the pool hands the memory of one thread's dead object to
/// another thread, the new object's construction (its first member's, before any other
/// member) acquires what the old one's destruction (its first member's, after every other
/// member) released.
struct TsanPooled {
    TsanPooled() { tsan_acquire(); }
    TsanPooled(const TsanPooled&) { tsan_acquire(); }
    TsanPooled(TsanPooled&&) noexcept { tsan_acquire(); }
    TsanPooled& operator=(const TsanPooled&) { return *this; }
    TsanPooled& operator=(TsanPooled&&) noexcept { return *this; }
    ~TsanPooled() { tsan_release(); }
};

/// tbb::parallel_for(range, body), annotated for ThreadSanitizer.
template <class Range, class Body>
void parallel_for(const Range& range, const Body& body) {
    const TsanForkJoin fork_join;
    oneapi::tbb::parallel_for(range, [&body](const Range& sub) {
        const TsanTask task;
        body(sub);
    });
}

}  // namespace stopscan::detail
