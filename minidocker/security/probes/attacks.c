/* attacks: the chapter 11 escape suite, one harmless attempt per argument.
 *
 *   attacks mount_tmpfs keyctl reboot ...     one line per attack: "NAME RESULT"
 *   attacks all                               every attack below
 *   attacks sweep LAST                        every syscall number 0..LAST with all-zero arguments, each in
 *                                             a child (1 s alarm): "sweep NR EPERM" or "sweep NR other"
 *
 * RESULT is "ok" when the attempt got through to the kernel code it aims at, else the
 * errno's name (EPERM: refused by a capability check or by seccomp; EROFS: a read-only
 * mount). Every attempt is side-effect free even when it succeeds: reboot with a wrong
 * magic number (EINVAL once past the permission check), swapoff of a path that does not
 * exist, settimeofday(NULL, NULL), files opened for writing and closed unwritten,
 * finit_module of fd -1, devices opened read-only. Built statically at test time:
 *   gcc -static -O2 -o attacks attacks.c
 * See the man page of each call; chapter 11's notebook explains each line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";     case ENOENT: return "ENOENT";   case EACCES: return "EACCES";
    case EROFS: return "EROFS";     case EINVAL: return "EINVAL";   case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";   case ENOSYS: return "ENOSYS";   case ESTALE: return "ESTALE";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case ENXIO: return "ENXIO"; case ENODEV: return "ENODEV";
    case EBUSY: return "EBUSY";     case ESRCH: return "ESRCH";     case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";   case EEXIST: return "EEXIST";   case ENOTDIR: return "ENOTDIR";
    default: { static char buf[32]; snprintf(buf, sizeof buf, "errno%d", e); return buf; }
    }
}

/* "ok" for a result >= 0, else the errno. */
static const char *verdict(long r) { return r >= 0 ? "ok" : errname(errno); }

static const char *open_for_write(const char *path) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errname(errno);
    close(fd);   /* nothing written */
    return "ok";
}

/* mknod a device node in /tmp and read one byte from it: the host's disk, /dev/mem ... */
static const char *mknod_read(mode_t type, unsigned major, unsigned minor) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/.attack-node-%d", getpid());
    if (mknod(path, type | 0600, makedev(major, minor)) < 0) return errname(errno);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int saved = errno;
    unlink(path);
    if (fd < 0) return errname(saved);
    char byte;
    long n = read(fd, &byte, 1);
    saved = errno;
    close(fd);
    return n >= 0 ? "ok" : errname(saved);
}

/* Run fn in a child (unshare and chroot change the caller); its exit code carries the errno. */
static const char *in_child(int (*fn)(void)) {
    pid_t pid = fork();
    if (pid < 0) return errname(errno);
    if (pid == 0) _exit(fn());
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status)) return "killed";
    return WEXITSTATUS(status) == 0 ? "ok" : errname(WEXITSTATUS(status));
}

static int do_unshare_user_mount(void) {
    /* The classic way back to capabilities: a new user namespace holds all of them. */
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return errno;
    if (mount("none", "/tmp", "tmpfs", 0, NULL) < 0) return errno;
    return 0;
}

static int do_unshare_mount(void) {
    if (unshare(CLONE_NEWNS) < 0) return errno;
    return 0;
}

static int do_mount_tmpfs(void) {
    /* in the container's own mount namespace; unmounted at once */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/.attack-mnt-%d", getpid());
    mkdir(dir, 0700);
    int r = mount("none", dir, "tmpfs", 0, NULL), e = errno;
    if (r == 0) umount2(dir, MNT_DETACH);
    rmdir(dir);
    return r == 0 ? 0 : e;
}

static int do_clone_newns(void) {
    /* raw clone(2) with CLONE_NEWNS: the seccomp argument filter looks at these flags */
    long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) return errno;
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return 0;
}

static int do_chroot_escape(void) {
    /* chroot(2) into a subdirectory, climb out with "..", chroot("."): escapes a plain chroot,
       not pivot_root. EEXIST means: still at the container's root. */
    struct stat before, after;
    stat("/", &before);
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/.attack-jail-%d", getpid());
    mkdir(dir, 0700);
    if (chroot(dir) < 0) { int e = errno; rmdir(dir); return e; }
    for (int i = 0; i < 64; i++) chdir("..");
    chroot(".");
    stat("/", &after);
    return (after.st_dev == before.st_dev && after.st_ino == before.st_ino) ? EEXIST : 0;
}

static const char *attack(const char *name, char **argv, int *used) {
    if (!strcmp(name, "mount_tmpfs")) return in_child(do_mount_tmpfs);
    if (!strcmp(name, "unshare_mount")) return in_child(do_unshare_mount);
    if (!strcmp(name, "unshare_user_mount")) return in_child(do_unshare_user_mount);
    if (!strcmp(name, "clone_newns")) return in_child(do_clone_newns);
    if (!strcmp(name, "chroot_escape")) return in_child(do_chroot_escape);
    if (!strcmp(name, "keyctl"))  /* KEYCTL_GET_KEYRING_ID of the session keyring: read-only */
        return verdict(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(name, "bpf"))     /* BPF_MAP_CREATE with an empty attribute: EINVAL once reached */
        return verdict(syscall(SYS_bpf, 0, NULL, 0));
    if (!strcmp(name, "perf_event_open"))  /* a NULL attribute: EFAULT once reached */
        return verdict(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    if (!strcmp(name, "userfaultfd")) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        if (fd >= 0) close(fd);
        return verdict(fd);
    }
    if (!strcmp(name, "reboot"))  /* a wrong second magic number: EINVAL past the CAP_SYS_BOOT check */
        return verdict(syscall(SYS_reboot, 0xfee1dead, 0, 0 /* CAD_OFF */, NULL));
    if (!strcmp(name, "swapoff")) return verdict(swapoff("/nonexistent-attack-swap"));
    if (!strcmp(name, "settimeofday")) return verdict(syscall(SYS_settimeofday, NULL, NULL));  /* sets nothing */
    if (!strcmp(name, "adjtimex_read")) { struct timex t = {0}; return verdict(adjtimex(&t)); }
    if (!strcmp(name, "finit_module")) return verdict(syscall(SYS_finit_module, -1, "", 0));
    if (!strcmp(name, "iopl")) return verdict(iopl(3));   /* this process only; it exits next */
    if (!strcmp(name, "sethostname")) {
        char host[256] = {0};
        gethostname(host, sizeof host - 1);
        return verdict(sethostname(host, strlen(host)));   /* the same name again */
    }
    if (!strcmp(name, "open_by_handle_at")) {
        /* "shocker": a handle for inode 2 (the root of an ext4 filesystem), opened read-only */
        struct { unsigned int bytes; int type; unsigned int ino, gen; } handle = {8, 1, 2, 0};
        int mount_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        long fd = syscall(SYS_open_by_handle_at, mount_fd, &handle, O_RDONLY);
        const char *v = verdict(fd);
        if (fd >= 0) close(fd);
        close(mount_fd);
        return v;
    }
    if (!strcmp(name, "raw_socket")) {
        int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        if (fd >= 0) close(fd);
        return verdict(fd);
    }
    if (!strcmp(name, "sysrq_trigger")) return open_for_write("/proc/sysrq-trigger");
    if (!strcmp(name, "core_pattern")) return open_for_write("/proc/sys/kernel/core_pattern");
    if (!strcmp(name, "sys_write")) return open_for_write("/sys/kernel/uevent_helper");
    if (!strcmp(name, "kcore")) {
        int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) close(fd);
        return verdict(fd);
    }
    if (!strcmp(name, "dev_mem")) return mknod_read(S_IFCHR, 1, 1);
    if (!strcmp(name, "disk")) {   /* disk MAJOR MINOR: the host's root disk, found by the caller */
        if (!argv[1] || !argv[2]) return "usage";
        *used = 2;
        return mknod_read(S_IFBLK, atoi(argv[1]), atoi(argv[2]));
    }
    if (!strcmp(name, "setuid_root")) {  /* as a setuid-root binary: did exec make us root? */
        return geteuid() == 0 && setuid(0) == 0 ? "ok" : "EPERM";
    }
    return "unknown";
}

static const char *ALL[] = {
    "mount_tmpfs", "unshare_mount", "unshare_user_mount", "clone_newns", "chroot_escape", "keyctl", "bpf",
    "perf_event_open", "userfaultfd", "reboot", "swapoff", "settimeofday", "adjtimex_read", "finit_module",
    "iopl", "sethostname", "open_by_handle_at", "raw_socket", "sysrq_trigger", "core_pattern", "sys_write",
    "kcore", "dev_mem", NULL,
};

/* Which syscall numbers the filter refuses: zero arguments are invalid for nearly every call (EFAULT,
   EINVAL, EBADF once reached), and what they do when valid stays in the child (exit, pause, setsid). */
static void sweep(int last) {
    for (int nr = 0; nr <= last; nr++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(1);
            long r = syscall(nr, 0, 0, 0, 0, 0, 0);
            _exit(r < 0 && errno == EPERM ? 100 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);   /* a call that blocks (pause, ppoll) ends with the alarm */
        printf("sweep %d %s\n", nr, WIFEXITED(status) && WEXITSTATUS(status) == 100 ? "EPERM" : "other");
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "sweep") && i + 1 < argc) {
            sweep(atoi(argv[++i]));
            continue;
        }
        if (!strcmp(argv[i], "all")) {
            int unused = 0;
            for (const char **a = ALL; *a; a++) printf("%s %s\n", *a, attack(*a, argv + i, &unused));
            continue;
        }
        int used = 0;
        printf("%s %s\n", argv[i], attack(argv[i], argv + i, &used));
        i += used;
    }
    return 0;
}
