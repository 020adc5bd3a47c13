#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H
// Counts heap allocations made by the threads that opted in, by defining malloc and friends in
// the one executable that links this target (ds-alloc-count) and forwarding to glibc's own
// __libc_* entry points. Never link it into ds-lb or the test bundle: a sanitizer run defines
// these symbols too.
#include <stdint.h>

/// Counts this thread's allocations from now on.
void alloc_counter_enable_this_thread(void);
/// Stops counting this thread's allocations.
void alloc_counter_disable_this_thread(void);
/// Allocations (malloc, calloc, realloc, memalign, posix_memalign, aligned_alloc) made by
/// counting threads since the last reset.
uint64_t alloc_counter_total(void);
void alloc_counter_reset(void);
/// When on, each counted allocation also writes a raw backtrace to stderr (to find its source).
void alloc_counter_set_tracing(int on);

#endif
