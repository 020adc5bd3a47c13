// Why this is safe: the wrappers only add a relaxed atomic increment (and an optional
// backtrace) in front of glibc's allocator, which they call through the __libc_* names glibc
// exports for exactly this purpose, so no dlsym bootstrap (which itself allocates) is needed.
#include "CAllocCounter.h"
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Thread_local int counting;
static _Thread_local int inTrace;
static atomic_uint_fast64_t counted;
static atomic_int tracing;

void alloc_counter_enable_this_thread(void) { counting = 1; }
void alloc_counter_disable_this_thread(void) { counting = 0; }
uint64_t alloc_counter_total(void) { return atomic_load_explicit(&counted, memory_order_relaxed); }
void alloc_counter_reset(void) { atomic_store_explicit(&counted, 0, memory_order_relaxed); }
void alloc_counter_set_tracing(int on) { atomic_store_explicit(&tracing, on, memory_order_relaxed); }

static void note(size_t size) {
    if (!counting || inTrace) return;
    atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
    if (atomic_load_explicit(&tracing, memory_order_relaxed)) {
        // backtrace() may allocate the first time (it loads libgcc_s): not counted.
        inTrace = 1;
        void *frames[24];
        int n = backtrace(frames, 24);
        char line[64];
        int len = 0;
        const char *prefix = "alloc of ";
        while (prefix[len]) { line[len] = prefix[len]; len++; }
        char digits[24];
        int d = 0;
        size_t v = size;
        do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v && d < 24);
        while (d) line[len++] = digits[--d];
        line[len++] = '\n';
        (void)!write(2, line, (size_t)len);
        backtrace_symbols_fd(frames, n, 2);
        (void)!write(2, "--\n", 3);
        inTrace = 0;
    }
}

void *malloc(size_t size) { note(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { note(n * size); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { note(size); return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    note(size);
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
