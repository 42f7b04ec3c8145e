// glibc functions that Swift's Glibc module does not export: the allocator's tuning (mallopt), and
// sync_file_range and fallocate, which fcntl.h declares only for _GNU_SOURCE; O_TMPFILE and the FICLONE ioctl.
#include <malloc.h>
#include <fcntl.h>
#include <sys/ioctl.h>
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

/// Waits until a file's range is written back (starting write-back of what is still dirty), without the device
/// flush or metadata of fsync: afterwards its cached pages are clean and can be dropped.
static inline int strata_wait_writeback(int fd, long long offset, long long count) {
    return sync_file_range(fd, offset, count, 1 | 2 | 4);  /* WAIT_BEFORE | WRITE | WAIT_AFTER */
}

/// Allocates a file's range (mode 0: the size grows if the range ends past it; restore never asks for that).
static inline int strata_preallocate(int fd, long long offset, long long count) {
    return fallocate(fd, 0, offset, count);
}

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

/// Makes a block device's range read as zeros without sending the zeros from here. `unmap` 1: only where the device
/// can guarantee zeros while releasing the blocks (a thin volume, an SSD or a loop device stays thin); 0: by the
/// device's write-zeroes command, or the kernel writes zero pages itself. -1 with errno (EOPNOTSUPP) where it cannot.
static inline int strata_zero_device_range(int fd, long long offset, long long count, int unmap) {
    int mode = unmap ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
    return fallocate(fd, mode, offset, count);
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

#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif
#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

/// Opens a new file without a name in `directory` (O_TMPFILE), for reading and writing, private (0600); it is gone
/// when closed. -1 with errno where the file system cannot (EOPNOTSUPP, EISDIR on old kernels) or may not.
static inline int strata_open_unnamed(const char *directory) {
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

/// Makes `destination` share every block of `source` (the FICLONE ioctl: a reflink, copy-on-write afterwards): an
/// instant copy on file systems that can (btrfs, XFS with reflink, bcachefs, ZFS with block cloning). -1 with errno
/// elsewhere (EOPNOTSUPP, EINVAL, ENOTTY), across file systems (EXDEV).
static inline int strata_clone_file(int destination, int source) {
    return ioctl(destination, FICLONE, source);
}

#include <sys/prctl.h>

/// Makes the process not dumpable: no core file, and no ptrace or /proc/PID/mem access by other processes of the same
/// user (prctl is variadic, which Swift cannot call). 0 on success.
static inline int strata_set_undumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
