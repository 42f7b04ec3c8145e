// glibc functions that Swift's Glibc module does not export: the allocator's tuning (mallopt), and
// sync_file_range and fallocate, which fcntl.h declares only for _GNU_SOURCE.
#include <malloc.h>
#include <fcntl.h>
#include <sys/vfs.h>

#ifndef __USE_GNU
extern int sync_file_range(int fd, __off64_t offset, __off64_t count, unsigned int flags);
extern int fallocate(int fd, int mode, __off64_t offset, __off64_t len);
#endif
#ifndef SYNC_FILE_RANGE_WRITE
#define SYNC_FILE_RANGE_WRITE 2
#endif

/// Starts write-back of a file's range without waiting for it (a hint; fsync gives durability).
static inline int strata_start_writeback(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE);
}

/// Allocates a file's range (mode 0: the size grows if the range ends past it; restore never asks for that).
static inline int strata_preallocate(int fd, long long offset, long long count) {
    return fallocate(fd, 0, offset, count);
}

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

/// Asks for a pipe buffer of `size` bytes (Linux; fails harmlessly on anything that is not a pipe, or above
/// /proc/sys/fs/pipe-max-size).
static inline int strata_set_pipe_size(int fd, int size) {
    return fcntl(fd, F_SETPIPE_SZ, size);
}

/// The file system type (statfs's f_type) a file is on, or 0 when it cannot be told.
static inline long strata_file_system_type(int fd) {
    struct statfs s;
    return fstatfs(fd, &s) == 0 ? (long)s.f_type : 0;
}
