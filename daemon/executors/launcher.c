/*
 * batchd's native job launcher: the same process and protocol as launcher.pl (which describes
 * both), for local jobs, built by `npm run build` where a C compiler is found.
 *
 * Why C: a job is started with vfork + exec. Where fork has to copy the forking process's page
 * tables and take a copy-on-write fault for each page the child touches before its exec, as on a
 * virtual machine, that is about half the cost of starting a short job (1,000 `true`s one at a
 * time: 2.0 s against 4.3 s for `xargs` and 4.7 s for Perl's fork, on the machine this was
 * written on). Perl has no vfork, and Node's spawn forks.
 *
 * Protocol: launcher.pl. Requests on stdin ("<length>\n" then NUL-separated fields):
 *   spawn KEY FILE CWD STDOUT STDERR NARGS ARG... NENV NAME=VALUE... [OPTIONS [NJOIN JOIN...]]
 *   kill KEY SIGNAL
 *   recycle KEY PATH...   (removed by one `rm -rf` run as job KEY; no folders are kept for reuse)
 * Events on stdout, one tab-separated line each: ready PID, started KEY PID, data KEY FD LENGTH
 * (then the bytes), exit KEY CODE SIGNUM [RESULT], failed KEY CODE ERRNO MESSAGE.
 *
 * The vfork child runs only system calls on memory prepared before the fork (no malloc, no
 * stdio), and reports a failure before its exec through a close-on-exec pipe as three numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A job's output pipes stay open at most this long after it exited (launcher.pl says why). */
#define DRAIN_MS 2000
#define MAX_JOIN 8
#define MAX_LIMITS 4

enum stage { ST_JOIN = 1, ST_LIMIT, ST_DUP, ST_CHDIR, ST_EXEC };

struct job {
  char *key;
  pid_t pid; /* 0 once reaped */
  char *cgroup; /* the cgroup.procs file of its first cgroup, or NULL */
  char *result; /* the result file to look at when it exits, or NULL */
  int pipes_left;
  int ending; /* exited, output still draining */
  long long deadline;
  char exit_fields[64];
  struct job *next;
};

struct outpipe {
  int fd; /* read end */
  int which; /* 1 or 2 */
  char *file; /* NULL: sent as data events; else appended to, opened at the first byte */
  int file_fd;
  struct job *job;
};

static struct job *jobs;
static struct outpipe *pipes;
static int npipes, cappipes;
static int null_fd = -1;

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fputs("batchd-launcher: out of memory\n", stderr);
    _exit(70);
  }
  return p;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_all(void);

/* Events go to the daemon in order; a write that fails means it is gone: so go its jobs. */
static void put(const char *bytes, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDOUT_FILENO, bytes, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      kill_all();
      _exit(0);
    }
    bytes += w;
    n -= (size_t)w;
  }
}

/* One event line; tabs, new lines and carriage returns in a field become spaces. */
static void emit(const char *op, int nfields, ...) {
  size_t cap = 256, len = 0;
  char *line = xmalloc(cap);
  va_list ap;
  va_start(ap, nfields);
  for (int i = -1; i < nfields; i++) {
    const char *f = i < 0 ? op : va_arg(ap, const char *);
    size_t n = strlen(f);
    if (len + n + 2 > cap) {
      cap = (len + n + 2) * 2;
      char *bigger = xmalloc(cap);
      memcpy(bigger, line, len);
      free(line);
      line = bigger;
    }
    if (i >= 0) line[len++] = '\t';
    for (size_t j = 0; j < n; j++) line[len++] = (f[j] == '\t' || f[j] == '\n' || f[j] == '\r') ? ' ' : f[j];
  }
  va_end(ap);
  line[len++] = '\n';
  put(line, len);
  free(line);
}

static void emit_data(const char *key, int which, const char *bytes, size_t n) {
  char head[128];
  int h = snprintf(head, sizeof head, "data\t%s\t%d\t%zu\n", key, which, n);
  put(head, (size_t)h);
  put(bytes, n);
}

static const char *errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
  const char *name = strerrorname_np(e);
  if (name != NULL) return name;
#endif
  static const struct {
    int number;
    const char *name;
  } names[] = {{ENOENT, "ENOENT"},   {EACCES, "EACCES"}, {EPERM, "EPERM"},   {ENOTDIR, "ENOTDIR"},
               {EISDIR, "EISDIR"},   {ENOEXEC, "ENOEXEC"}, {E2BIG, "E2BIG"}, {ENOMEM, "ENOMEM"},
               {EAGAIN, "EAGAIN"},   {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"}, {ELOOP, "ELOOP"},
               {ENAMETOOLONG, "ENAMETOOLONG"}, {ETXTBSY, "ETXTBSY"}, {EINVAL, "EINVAL"},
               {ENOSPC, "ENOSPC"},   {EROFS, "EROFS"},   {EEXIST, "EEXIST"}, {EBUSY, "EBUSY"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].number == e) return names[i].name;
  return "EIO";
}

/* "exit KEY CODE SIGNUM [RESULT]": the fields after the key were made when it was reaped. */
static void emit_exit(const struct job *job) {
  char line[128];
  int n = snprintf(line, sizeof line, "exit\t%s\t%s\n", job->key, job->exit_fields);
  put(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void add_pipe(int fd, int which, const char *file, struct job *job) {
  if (npipes == cappipes) {
    cappipes = cappipes ? cappipes * 2 : 16;
    struct outpipe *bigger = xmalloc(sizeof *pipes * (size_t)cappipes);
    if (npipes) memcpy(bigger, pipes, sizeof *pipes * (size_t)npipes);
    free(pipes);
    pipes = bigger;
  }
  pipes[npipes++] = (struct outpipe){fd, which, file ? xstrdup(file) : NULL, -1, job};
  job->pipes_left++;
}

static void free_job(struct job *job) {
  for (struct job **at = &jobs; *at; at = &(*at)->next)
    if (*at == job) {
      *at = job->next;
      break;
    }
  free(job->key);
  free(job->cgroup);
  free(job->result);
  free(job);
}

static void close_pipe(int index) {
  struct outpipe p = pipes[index];
  pipes[index] = pipes[--npipes];
  close(p.fd);
  if (p.file_fd >= 0) close(p.file_fd);
  free(p.file);
  struct job *job = p.job;
  if (--job->pipes_left > 0 || !job->ending) return;
  emit_exit(job);
  free_job(job);
}

/* Returns 1 when the pipe was closed (the caller's index now holds another pipe). */
static int forward(int index) {
  struct outpipe *p = &pipes[index];
  char chunk[65536];
  ssize_t got = read(p->fd, chunk, sizeof chunk);
  if (got > 0) {
    if (p->file == NULL) {
      emit_data(p->job->key, p->which, chunk, (size_t)got);
      return 0;
    }
    if (p->file_fd < 0) p->file_fd = open(p->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    for (ssize_t at = 0; p->file_fd >= 0 && at < got;) {
      ssize_t put_n = write(p->file_fd, chunk + at, (size_t)(got - at));
      if (put_n < 0) break; /* disk full: the rest of this chunk is lost */
      at += put_n;
    }
    return 0;
  }
  if (got < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  close_pipe(index);
  return 1;
}

/* Everything a job left in its cgroup, whatever session it moved to; a frozen one is thawed. */
static void kill_cgroup(const char *procs) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", procs);
  char *slash = strrchr(dir, '/');
  if (slash != NULL) *slash = '\0';
  for (int pass = 0; pass < 3; pass++) {
    FILE *f = fopen(procs, "re");
    if (f == NULL) return;
    int any = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
      kill((pid_t)pid, SIGKILL);
      any = 1;
    }
    fclose(f);
    if (!any) return;
    static const char *const thaw[][2] = {{"freezer.state", "THAWED"}, {"cgroup.freeze", "0"}};
    for (int i = 0; i < 2; i++) {
      char file[PATH_MAX];
      if (snprintf(file, sizeof file, "%s/%s", dir, thaw[i][0]) >= (int)sizeof file) continue;
      int fd = open(file, O_WRONLY | O_CLOEXEC);
      if (fd < 0) continue;
      if (write(fd, thaw[i][1], strlen(thaw[i][1])) < 0) { /* gone meanwhile */
      }
      close(fd);
    }
  }
}

/* A job that could not be started: its message goes where its stderr would have gone. */
static void report_failed(const char *key, const char *err, int code, const char *errname, const char *message) {
  char line[PATH_MAX + 512];
  int n = snprintf(line, sizeof line, "batchd: %s\n", message);
  if (n >= (int)sizeof line) n = (int)sizeof line - 1;
  if (err[0] == '\0') {
    emit_data(key, 2, line, (size_t)n);
  } else {
    int fd = open(err, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) < 0) { /* nowhere else to say it */
      }
      close(fd);
    }
  }
  char codes[16];
  snprintf(codes, sizeof codes, "%d", code);
  emit("failed", 4, key, codes, errname, message);
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p */
static int make_path(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0777) < 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0777) < 0 && errno != EEXIST) return -1;
  return is_dir(buf) ? 0 : -1;
}

struct limit {
  int resource;
  struct rlimit value;
  const char *name;
};

/* What a spawn asks for, parsed; every pointer is into the request frame or freshly allocated. */
struct spawn_request {
  const char *key, *file, *cwd, *out, *err;
  char **argv; /* argv[0] = file */
  char **env; /* the launcher's environment with the job's variables over it */
  int lazy, mkdir, result;
  struct limit limits[MAX_LIMITS];
  int nlimits;
  const char *join[MAX_JOIN];
  int njoin;
  const char *result_file;
};

/* Candidate paths for FILE (a PATH search with the job's PATH, as execvp would do). */
static char **exec_candidates(const char *file, char **env) {
  if (strchr(file, '/') != NULL || file[0] == '\0') {
    char **one = xmalloc(sizeof(char *) * 2);
    one[0] = xstrdup(file);
    one[1] = NULL;
    return one;
  }
  const char *search = "/usr/local/bin:/usr/bin:/bin";
  for (char **e = env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) search = *e + 5;
  size_t count = 2;
  for (const char *s = search; *s; s++) count += *s == ':';
  char **list = xmalloc(sizeof(char *) * count);
  size_t n = 0;
  for (const char *s = search;;) {
    const char *end = strchrnul(s, ':');
    size_t len = (size_t)(end - s);
    char *full = xmalloc(len + strlen(file) + 2);
    if (len == 0) sprintf(full, "%s", file); /* an empty entry is the current folder */
    else sprintf(full, "%.*s/%s", (int)len, s, file);
    list[n++] = full;
    if (*end == '\0') break;
    s = end + 1;
  }
  list[n] = NULL;
  return list;
}

struct child_report {
  int code, err, stage, index;
};

static __attribute__((noreturn)) void child_fail(int fd, int code, int stage, int index) {
  struct child_report r = {code, errno, stage, index};
  if (write(fd, &r, sizeof r) < 0) { /* the parent then sees no report: it reads an exit */
  }
  _exit(code);
}

/* What the vfork child needs, all made before the fork. */
struct child_plan {
  int fds[3]; /* its stdin, stdout, stderr */
  int report; /* the close-on-exec pipe for a failure before exec */
  const struct spawn_request *q;
  char **candidates; /* the paths to try for q->file */
  char **sh_argv; /* {"/bin/sh", (the candidate), args..., NULL} for a script without "#!" */
};

/* The child after vfork, in a frame of its own below the parent's: it execs or exits, and only
 * makes system calls (every signal stays blocked until just before exec; the launcher's
 * handlers do nothing, and exec resets them). */
static __attribute__((noreturn, noinline)) void child_exec(const struct child_plan *plan) {
  const struct spawn_request *q = plan->q;
  sigset_t none;
  sigemptyset(&none);
  setsid();
  for (int i = 0; i < q->njoin; i++) {
    int fd = open(q->join[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0\n", 2) != 2) child_fail(plan->report, 126, ST_JOIN, i);
    close(fd);
  }
  for (int i = 0; i < q->nlimits; i++)
    if (setrlimit(q->limits[i].resource, &q->limits[i].value) < 0) child_fail(plan->report, 126, ST_LIMIT, i);
  for (int fd = 0; fd < 3; fd++)
    if (dup2(plan->fds[fd], fd) < 0) child_fail(plan->report, 126, ST_DUP, fd);
  if (chdir(q->cwd) < 0) child_fail(plan->report, 126, ST_CHDIR, 0);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int saw_eacces = 0, other = 0;
  for (char **c = plan->candidates; *c && !other; c++) {
    execve(*c, q->argv, q->env);
    if (errno == ENOEXEC) {
      plan->sh_argv[1] = *c;
      execve("/bin/sh", plan->sh_argv, q->env);
    }
    if (errno == EACCES) saw_eacces = 1;
    else if (errno != ENOENT && errno != ENOTDIR) other = errno;
  }
  errno = other ? other : saw_eacces ? EACCES : ENOENT;
  child_fail(plan->report, errno == ENOENT ? 127 : 126, ST_EXEC, 0);
}

/* vfork: the parent goes on once the child has exec'd or exited. */
static __attribute__((noinline)) pid_t start_child(const struct child_plan *plan) {
  pid_t pid = vfork();
  if (pid == 0) child_exec(plan);
  return pid;
}

static void launch(struct spawn_request *q) {
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, report[2] = {-1, -1};
  int out_fd = -1, err_fd = -1;
  char message[PATH_MAX * 2 + 64];
  char **candidates = NULL;
  int failed_code = 0;
  const char *failed_errno = NULL;

#define GIVE_UP(code, ...)                                        \
  do {                                                            \
    failed_errno = errno_name(errno);                             \
    snprintf(message, sizeof message, __VA_ARGS__);               \
    failed_code = code;                                           \
    goto give_up;                                                 \
  } while (0)

  if ((q->lazy || q->out[0] == '\0') && pipe2(out_pipe, O_CLOEXEC) < 0)
    GIVE_UP(126, "cannot start %s: %s", q->file, strerror(errno));
  if ((q->lazy || q->err[0] == '\0') && pipe2(err_pipe, O_CLOEXEC) < 0)
    GIVE_UP(126, "cannot start %s: %s", q->file, strerror(errno));
  if (pipe2(report, O_CLOEXEC) < 0) GIVE_UP(126, "cannot start %s: %s", q->file, strerror(errno));
  if (null_fd < 0 && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
    GIVE_UP(126, "cannot open /dev/null: %s", strerror(errno));
  if (out_pipe[1] < 0 && (out_fd = open(q->out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) < 0)
    GIVE_UP(126, "cannot open %s: %s", q->out, strerror(errno));
  if (err_pipe[1] < 0 && (err_fd = open(q->err, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) < 0)
    GIVE_UP(126, "cannot open %s: %s", q->err, strerror(errno));
  if (q->mkdir && !is_dir(q->cwd) && make_path(q->cwd) < 0)
    GIVE_UP(126, "cannot create the job's folder %s: %s", q->cwd, strerror(errno));

  candidates = exec_candidates(q->file, q->env);
  const int fds[3] = {null_fd, out_pipe[1] >= 0 ? out_pipe[1] : out_fd, err_pipe[1] >= 0 ? err_pipe[1] : err_fd};
  /* For a script without "#!", run by sh as execvp would: sh_argv[1] is set in the child. */
  int nargv = 0;
  while (q->argv[nargv] != NULL) nargv++;
  char **sh_argv = xmalloc(sizeof(char *) * (size_t)(nargv + 2));
  sh_argv[0] = "/bin/sh";
  for (int i = 1; i <= nargv; i++) sh_argv[i + 1] = q->argv[i];
  sh_argv[nargv + 1] = NULL;
  struct child_plan plan = {{fds[0], fds[1], fds[2]}, report[1], q, candidates, sh_argv};
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t pid = start_child(&plan);
  int fork_errno = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  for (char **c = candidates; *c; c++) free(*c);
  free(candidates);
  free(sh_argv);
  candidates = NULL;
  if (pid < 0) {
    errno = fork_errno;
    GIVE_UP(126, "cannot start %s: %s", q->file, strerror(errno));
  }
  close(report[1]);
  report[1] = -1;
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  if (err_pipe[1] >= 0) close(err_pipe[1]);
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  out_pipe[1] = err_pipe[1] = out_fd = err_fd = -1;
  struct child_report r;
  ssize_t got;
  do got = read(report[0], &r, sizeof r);
  while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == (ssize_t)sizeof r) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (err_pipe[0] >= 0) close(err_pipe[0]);
    const char *why = strerror(r.err);
    if (r.stage == ST_JOIN) snprintf(message, sizeof message, "cannot enter the job's cgroup %s: %s", q->join[r.index], why);
    else if (r.stage == ST_LIMIT) snprintf(message, sizeof message, "cannot set the job's %s limit: %s", q->limits[r.index].name, why);
    else if (r.stage == ST_DUP) snprintf(message, sizeof message, "cannot redirect fd %d: %s", r.index, why);
    else if (r.stage == ST_CHDIR) snprintf(message, sizeof message, "cannot change to folder %s: %s", q->cwd, why);
    else if (r.code == 127) snprintf(message, sizeof message, "%s: command not found", q->file);
    else snprintf(message, sizeof message, "%s: %s", q->file, why);
    report_failed(q->key, q->err, r.code, errno_name(r.err), message);
    return;
  }

  struct job *job = xmalloc(sizeof *job);
  *job = (struct job){.key = xstrdup(q->key), .pid = pid, .cgroup = q->njoin ? xstrdup(q->join[0]) : NULL};
  if (q->result) job->result = xstrdup(q->result_file ? q->result_file : "");
  job->next = jobs;
  jobs = job;
  if (out_pipe[0] >= 0) {
    fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    add_pipe(out_pipe[0], 1, q->out[0] ? q->out : NULL, job);
  }
  if (err_pipe[0] >= 0) {
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    add_pipe(err_pipe[0], 2, q->err[0] ? q->err : NULL, job);
  }
  char pids[24];
  snprintf(pids, sizeof pids, "%d", (int)pid);
  emit("started", 2, q->key, pids);
  return;

give_up:
  for (int *fd = (int[]){out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], report[0], report[1], out_fd, err_fd, -2};
       *fd != -2; fd++)
    if (*fd >= 0) close(*fd);
  if (candidates != NULL) {
    for (char **c = candidates; *c; c++) free(*c);
    free(candidates);
  }
  report_failed(q->key, q->err, failed_code, failed_errno, message);
#undef GIVE_UP
}

static void reap(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    struct job *job = jobs;
    while (job != NULL && job->pid != pid) job = job->next;
    if (job == NULL) continue;
    job->pid = 0;
    /* Whatever the job left behind in its group (and cgroup) goes with it. */
    kill(-pid, SIGKILL);
    if (job->cgroup != NULL) kill_cgroup(job->cgroup);
    int n = WIFSIGNALED(status) ? snprintf(job->exit_fields, sizeof job->exit_fields, "\t%d", WTERMSIG(status))
                                : snprintf(job->exit_fields, sizeof job->exit_fields, "%d\t0", WEXITSTATUS(status));
    if (job->result != NULL) {
      struct stat st;
      int there = job->result[0] != '\0' && stat(job->result, &st) == 0 && st.st_size > 0;
      snprintf(job->exit_fields + n, sizeof job->exit_fields - (size_t)n, "\t%d", there);
    }
    if (job->pipes_left > 0) {
      job->ending = 1;
      job->deadline = now_ms() + DRAIN_MS;
    } else {
      emit_exit(job);
      free_job(job);
    }
  }
}

/* Output still held open after its job's end by a process that escaped the group: cut it off. */
static void drain_overdue(void) {
  long long now = now_ms();
  for (int i = 0; i < npipes;) {
    if (pipes[i].job->ending && pipes[i].job->deadline <= now) close_pipe(i);
    else i++;
  }
}

static int signal_number(const char *name) {
  static const struct {
    const char *name;
    int number;
  } table[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
               {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ALRM", SIGALRM},
               {"TSTP", SIGTSTP}, {"XCPU", SIGXCPU}, {"WINCH", SIGWINCH}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(table[i].name, name) == 0) return table[i].number;
  return 0;
}

/* The launcher's environment with NAME=VALUE pairs over it. */
static char **job_environment(char **pairs, int n) {
  size_t count = 0;
  for (char **e = environ; *e; e++) count++;
  char **env = xmalloc(sizeof(char *) * (count + (size_t)n + 1));
  size_t k = 0;
  for (char **e = environ; *e; e++) {
    size_t name = strcspn(*e, "=");
    int replaced = 0;
    for (int i = 0; i < n && !replaced; i++)
      replaced = strncmp(pairs[i], *e, name) == 0 && pairs[i][name] == '=';
    if (!replaced) env[k++] = *e;
  }
  for (int i = 0; i < n; i++) {
    int later = 0; /* the last of repeated names wins, as in Perl's %ENV */
    size_t name = strcspn(pairs[i], "=");
    for (int j = i + 1; j < n && !later; j++) later = strncmp(pairs[j], pairs[i], name + 1) == 0;
    if (!later && pairs[i][name] == '=') env[k++] = pairs[i];
  }
  env[k] = NULL;
  return env;
}

static void handle_spawn(char **f, int n) {
  if (n < 6) return;
  struct spawn_request q = {.key = f[0], .file = f[1], .cwd = f[2], .out = f[3], .err = f[4]};
  int at = 5;
  int nargs = atoi(f[at++]);
  if (nargs < 0 || at + nargs >= n + 1) return;
  q.argv = xmalloc(sizeof(char *) * (size_t)(nargs + 2));
  q.argv[0] = (char *)q.file;
  for (int i = 0; i < nargs; i++) q.argv[i + 1] = f[at++];
  q.argv[nargs + 1] = NULL;
  int nenv = at < n ? atoi(f[at++]) : 0;
  if (nenv < 0 || at + nenv > n) nenv = 0;
  char **pairs = f + at;
  at += nenv;
  q.env = job_environment(pairs, nenv);
  for (int i = 0; i < nenv; i++)
    if (strncmp(pairs[i], "BATCHD_RESULT=", 14) == 0) q.result_file = pairs[i] + 14;
  if (at < n) {
    char *options = f[at++];
    for (char *save = NULL, *opt = strtok_r(options, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
      if (strcmp(opt, "lazy") == 0) q.lazy = 1;
      else if (strcmp(opt, "mkdir") == 0) q.mkdir = 1;
      else if (strcmp(opt, "result") == 0) q.result = 1;
      else {
        static const struct {
          const char *name;
          int resource;
        } names[] = {{"cpu", RLIMIT_CPU}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS}};
        char *eq = strchr(opt, '=');
        if (eq == NULL || q.nlimits == MAX_LIMITS) continue;
        *eq = '\0';
        for (size_t i = 0; i < 4; i++) {
          if (strcmp(opt, names[i].name) != 0) continue;
          rlim_t value = (rlim_t)strtoull(eq + 1, NULL, 10);
          /* A CPU limit's hard one is a second later, so the job gets SIGXCPU before SIGKILL. */
          rlim_t hard = names[i].resource == RLIMIT_CPU ? value + 1 : value;
          q.limits[q.nlimits++] = (struct limit){names[i].resource, {value, hard}, names[i].name};
        }
      }
    }
  }
  if (at < n) {
    int njoin = atoi(f[at++]);
    for (int i = 0; i < njoin && at < n && q.njoin < MAX_JOIN; i++) q.join[q.njoin++] = f[at++];
  }
  launch(&q);
  free(q.argv);
  free(q.env);
}

static void handle(char *frame, size_t len) {
  int cap = 16, n = 0;
  char **f = xmalloc(sizeof(char *) * (size_t)cap);
  for (size_t start = 0;;) {
    char *nul = memchr(frame + start, '\0', len - start);
    if (n == cap) {
      cap *= 2;
      char **bigger = xmalloc(sizeof(char *) * (size_t)cap);
      memcpy(bigger, f, sizeof(char *) * (size_t)n);
      free(f);
      f = bigger;
    }
    f[n++] = frame + start;
    if (nul == NULL) break;
    start = (size_t)(nul - frame) + 1;
  }
  /* The frame buffer has one byte more than its length: the last field ends there. */
  frame[len] = '\0';
  if (strcmp(f[0], "spawn") == 0) {
    handle_spawn(f + 1, n - 1);
  } else if (strcmp(f[0], "kill") == 0 && n >= 3) {
    int sig = signal_number(f[2]);
    for (struct job *job = jobs; job && sig; job = job->next)
      if (job->pid > 0 && strcmp(job->key, f[1]) == 0) kill(-job->pid, sig);
  } else if (strcmp(f[0], "recycle") == 0 && n >= 2) {
    if (n == 2) {
      emit("exit", 3, f[1], "0", "0");
    } else {
      char **g = xmalloc(sizeof(char *) * (size_t)(n + 8));
      char count[16];
      snprintf(count, sizeof count, "%d", n - 2 + 2);
      int k = 0;
      g[k++] = f[1];
      g[k++] = "rm";
      g[k++] = "/";
      g[k++] = "";
      g[k++] = "";
      g[k++] = count;
      g[k++] = "-rf";
      g[k++] = "--";
      for (int i = 2; i < n; i++) g[k++] = f[i];
      g[k++] = "0";
      handle_spawn(g, k);
      free(g);
    }
  }
  free(f);
}

static void ignore(int sig) { (void)sig; }

int main(void) {
  /* Caught and dropped rather than ignored: an ignored signal would stay ignored in the jobs. */
  struct sigaction sa = {0};
  sa.sa_handler = ignore;
  const int caught[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) sigaction(caught[i], &sa, NULL);
  /* Nor may the jobs inherit a signal ignored by whoever started this process. */
  for (int s = 1; s < NSIG; s++) {
    struct sigaction now;
    if (sigaction(s, NULL, &now) == 0 && now.sa_handler == SIG_IGN) signal(s, SIG_DFL);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    perror("batchd-launcher: signalfd");
    return 70;
  }
  char ready[32];
  snprintf(ready, sizeof ready, "%d", (int)getpid());
  emit("ready", 1, ready);

  size_t cap = 1 << 16, len = 0;
  char *buf = xmalloc(cap);
  struct pollfd *fds = NULL;
  int capfds = 0;
  for (;;) {
    if (capfds < npipes + 2) {
      free(fds);
      capfds = (npipes + 2) * 2;
      fds = xmalloc(sizeof *fds * (size_t)capfds);
    }
    fds[0] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
    fds[1] = (struct pollfd){sfd, POLLIN, 0};
    int watched = npipes;
    for (int i = 0; i < watched; i++) fds[i + 2] = (struct pollfd){pipes[i].fd, POLLIN, 0};
    int timeout = -1;
    for (struct job *job = jobs; job; job = job->next)
      if (job->ending) {
        long long left = job->deadline - now_ms();
        int t = left < 0 ? 0 : (int)left;
        if (timeout < 0 || t < timeout) timeout = t;
      }
    int ready_n = poll(fds, (nfds_t)(watched + 2), timeout);
    if (ready_n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) {
      struct signalfd_siginfo info;
      while (read(sfd, &info, sizeof info) > 0) {
      }
    }
    reap();
    /* Output before the requests: a job's data events come before its exit event. The pipes
     * polled are the first `watched` of the list; a close moves the last one into its place. */
    for (int i = watched - 1; i >= 0; i--)
      if (i < npipes && fds[i + 2].revents && pipes[i].fd == fds[i + 2].fd) forward(i);
    drain_overdue();
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (cap - len < 65536) {
      cap *= 2;
      char *bigger = xmalloc(cap);
      memcpy(bigger, buf, len);
      free(buf);
      buf = bigger;
    }
    ssize_t got = read(STDIN_FILENO, buf + len, cap - len - 1);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      break;
    }
    if (got == 0) break;
    len += (size_t)got;
    size_t at = 0;
    for (;;) {
      char *nl = memchr(buf + at, '\n', len - at);
      if (nl == NULL) break;
      size_t frame_len = strtoull(buf + at, NULL, 10);
      size_t start = (size_t)(nl - buf) + 1;
      if (len - start < frame_len) break;
      /* handle() ends the last field with a NUL at frame_len: keep the byte it overwrites. */
      char saved = start + frame_len < cap ? buf[start + frame_len] : 0;
      handle(buf + start, frame_len);
      if (start + frame_len < cap) buf[start + frame_len] = saved;
      at = start + frame_len;
    }
    memmove(buf, buf + at, len - at);
    len -= at;
  }
  /* Stdin closed (the daemon is gone, even by kill -9): every job here is killed. */
  kill_all();
  return 0;
}

static void kill_all(void) {
  for (struct job *job = jobs; job; job = job->next) {
    if (job->pid > 0) kill(-job->pid, SIGKILL);
    if (job->cgroup != NULL) kill_cgroup(job->cgroup);
  }
}
