/*
 * closed-loop: the policyd benchmark's socketmap load generator (bench/policyd.ts builds and drives it).
 *
 * N connections to one socketmap server (Postfix socketmap_table(5): netstring requests "NAME KEY", netstring
 * replies), each a closed loop as Postfix's own client: one request outstanding, the next sent when the whole
 * reply has arrived. Requests go round-robin per connection, connection i starting at request i. Each reply is
 * compared byte for byte with the expected one. Written in C so that the client costs the machine less CPU per
 * query than the daemons it measures (the Node client was the limit at 10 and 50 connections: BENCHMARKS.md).
 *
 *   closed-loop (--tcp HOST:PORT | --unix PATH) --connections N --requests FILE [--latencies FILE]
 *
 * FILE: one query per line, "request payload<TAB>expected reply payload" (no netstring framing).
 * Control on stdin/stdout: prints "ready" once every connection is open; "go" starts the loops, "stop" ends
 * them; replies still in flight are then awaited (at most 2 s) but not counted, and one JSON line is printed:
 *   {"completed":N,"mismatches":M,"seconds":S,"p50_ns":X,"p99_ns":Y,"error":null}
 * counting the replies that arrived between "go" and "stop" (latency: request write to the reply's last byte).
 * --latencies FILE writes those latencies in arrival order as little-endian uint64 nanoseconds.
 * A connection closed by the server, a malformed reply or a reply that nobody asked for ends the run with
 * "error" set and exit status 1. Exit status 2: bad arguments or setup failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLY (64 * 1024)
#define MAX_QUERIES 4096
#define DRAIN_NS 2000000000ULL

struct query {
  char *request; /* netstring-framed */
  size_t request_len;
  char *expected; /* netstring-framed */
  size_t expected_len;
};

struct conn {
  int fd;
  size_t next;      /* index of the query in flight or to send */
  int in_flight;    /* a request was written and its reply is not complete */
  uint64_t sent_at; /* CLOCK_MONOTONIC ns of that write */
  size_t len;       /* bytes of the reply so far */
  char buf[MAX_REPLY + 16];
};

static struct query queries[MAX_QUERIES];
static size_t query_count;
static uint64_t *latencies;
static size_t latency_count, latency_cap;
static char error_text[256];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "closed-loop: %s\n", what);
  exit(2);
}

static char *netstring(const char *payload, size_t len, size_t *out_len) {
  char *out = malloc(len + 24);
  if (out == NULL) die("out of memory");
  int head = sprintf(out, "%zu:", len);
  memcpy(out + head, payload, len);
  out[head + len] = ',';
  *out_len = (size_t)head + len + 1;
  return out;
}

static void load_queries(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) die("cannot open the requests file");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    if (line[n - 1] == '\n') line[--n] = '\0';
    if (n == 0) continue;
    char *tab = strchr(line, '\t');
    if (tab == NULL) die("a requests line has no tab between request and expected reply");
    if (query_count == MAX_QUERIES) die("too many requests");
    struct query *q = &queries[query_count++];
    q->request = netstring(line, (size_t)(tab - line), &q->request_len);
    q->expected = netstring(tab + 1, (size_t)(n - (tab + 1 - line)), &q->expected_len);
  }
  free(line);
  fclose(f);
  if (query_count == 0) die("the requests file is empty");
}

static int open_connection(const char *tcp, const char *unix_path) {
  int fd;
  if (unix_path != NULL) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(unix_path) >= sizeof addr.sun_path) die("socket path too long");
    strcpy(addr.sun_path, unix_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("cannot connect to the UNIX socket");
  } else {
    char host[64];
    const char *colon = strrchr(tcp, ':');
    if (colon == NULL || (size_t)(colon - tcp) >= sizeof host) die("--tcp: HOST:PORT");
    memcpy(host, tcp, (size_t)(colon - tcp));
    host[colon - tcp] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("--tcp: HOST must be an IPv4 address");
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("cannot connect over TCP");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

static int send_query(struct conn *c) {
  struct query *q = &queries[c->next];
  c->sent_at = now_ns();
  ssize_t n = write(c->fd, q->request, q->request_len);
  if (n != (ssize_t)q->request_len) {
    snprintf(error_text, sizeof error_text, "write: %s", n < 0 ? strerror(errno) : "short write");
    return -1;
  }
  c->in_flight = 1;
  return 0;
}

static void record(uint64_t ns) {
  if (latency_count == latency_cap) {
    latency_cap = latency_cap ? latency_cap * 2 : 1 << 20;
    latencies = realloc(latencies, latency_cap * sizeof *latencies);
    if (latencies == NULL) die("out of memory");
  }
  latencies[latency_count++] = ns;
}

/* 1: a whole reply is in c->buf, 0: more bytes needed, -1: malformed (error_text set). */
static int reply_complete(struct conn *c) {
  size_t digits = 0, length = 0;
  while (digits < c->len && c->buf[digits] != ':') {
    char d = c->buf[digits];
    if (d < '0' || d > '9' || digits == 10) {
      snprintf(error_text, sizeof error_text, "malformed reply length");
      return -1;
    }
    length = length * 10 + (size_t)(d - '0');
    digits++;
  }
  if (digits == c->len) return 0;
  if (digits == 0 || length > MAX_REPLY) {
    snprintf(error_text, sizeof error_text, "malformed reply length");
    return -1;
  }
  size_t total = digits + 1 + length + 1;
  if (c->len < total) return 0;
  if (c->len > total || c->buf[total - 1] != ',') {
    snprintf(error_text, sizeof error_text, c->len > total ? "bytes after the reply" : "no ',' after the reply");
    return -1;
  }
  return 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *tcp = NULL, *unix_path = NULL, *requests = NULL, *latency_file = NULL;
  int connections = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--tcp") == 0) tcp = argv[i + 1];
    else if (strcmp(argv[i], "--unix") == 0) unix_path = argv[i + 1];
    else if (strcmp(argv[i], "--connections") == 0) connections = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--requests") == 0) requests = argv[i + 1];
    else if (strcmp(argv[i], "--latencies") == 0) latency_file = argv[i + 1];
    else die("unknown option");
  }
  if ((tcp == NULL) == (unix_path == NULL) || connections < 1 || connections > 10000 || requests == NULL)
    die("usage: closed-loop (--tcp HOST:PORT | --unix PATH) --connections N --requests FILE [--latencies FILE]");
  load_queries(requests);

  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct conn *conns = calloc((size_t)connections, sizeof *conns);
  if (conns == NULL) die("out of memory");
  for (int i = 0; i < connections; i++) {
    conns[i].fd = open_connection(tcp, unix_path);
    conns[i].next = (size_t)i % query_count;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
  }
  struct epoll_event stdin_ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &stdin_ev) < 0) die("epoll_ctl stdin");
  printf("ready\n");
  fflush(stdout);

  enum { WAITING, RUNNING, DRAINING } phase = WAITING;
  uint64_t started = 0, stopped = 0;
  size_t completed = 0, mismatches = 0;
  struct epoll_event events[256];
  int in_flight = 0;
  char control[64];
  size_t control_len = 0;
  while (error_text[0] == '\0') {
    if (phase == DRAINING && (in_flight == 0 || now_ns() - stopped > DRAIN_NS)) break;
    int n = epoll_wait(ep, events, 256, phase == DRAINING ? 100 : -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n && error_text[0] == '\0'; e++) {
      struct conn *c = events[e].data.ptr;
      if (c == NULL) { /* a control line on stdin */
        ssize_t r = read(STDIN_FILENO, control + control_len, sizeof control - 1 - control_len);
        if (r <= 0) { /* stdin closed: the driver is gone */
          if (phase == RUNNING) stopped = now_ns();
          phase = DRAINING;
          epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
          continue;
        }
        control_len += (size_t)r;
        control[control_len] = '\0';
        char *nl;
        while ((nl = strchr(control, '\n')) != NULL) {
          *nl = '\0';
          if (strcmp(control, "go") == 0 && phase == WAITING) {
            phase = RUNNING;
            started = now_ns();
            for (int i = 0; i < connections && error_text[0] == '\0'; i++) {
              if (send_query(&conns[i]) == 0) in_flight++;
            }
          } else if (strcmp(control, "stop") == 0 && phase == RUNNING) {
            stopped = now_ns();
            phase = DRAINING;
          }
          control_len -= (size_t)(nl + 1 - control);
          memmove(control, nl + 1, control_len + 1);
        }
        if (control_len == sizeof control - 1) control_len = 0; /* a line too long to be a command */
        continue;
      }
      ssize_t r = read(c->fd, c->buf + c->len, MAX_REPLY + 16 - c->len);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        snprintf(error_text, sizeof error_text, "socketmap connection closed by the server%s%s",
                 r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
        break;
      }
      if (r < 0) continue;
      if (!c->in_flight) {
        snprintf(error_text, sizeof error_text, "a reply arrived with no query outstanding");
        break;
      }
      c->len += (size_t)r;
      int done = reply_complete(c);
      if (done < 0) break;
      if (done == 0) {
        if (c->len > MAX_REPLY) snprintf(error_text, sizeof error_text, "reply over %d bytes", MAX_REPLY);
        continue;
      }
      uint64_t t = now_ns();
      struct query *q = &queries[c->next];
      c->in_flight = 0;
      in_flight--;
      if (phase == RUNNING) {
        record(t - c->sent_at);
        completed++;
        if (c->len != q->expected_len || memcmp(c->buf, q->expected, c->len) != 0) mismatches++;
      }
      c->len = 0;
      c->next = (c->next + 1) % query_count;
      if (phase == RUNNING && send_query(c) == 0) in_flight++;
    }
  }
  if (phase == RUNNING) stopped = now_ns();
  double seconds = started == 0 ? 0 : (double)(stopped - started) / 1e9;

  if (latency_file != NULL) {
    FILE *f = fopen(latency_file, "wb");
    if (f == NULL || fwrite(latencies, sizeof *latencies, latency_count, f) != latency_count) die("cannot write --latencies");
    fclose(f);
  }
  uint64_t p50 = 0, p99 = 0;
  if (latency_count > 0) {
    qsort(latencies, latency_count, sizeof *latencies, cmp_u64);
    size_t i50 = (size_t)(0.5 * (double)latency_count), i99 = (size_t)(0.99 * (double)latency_count);
    p50 = latencies[i50 < latency_count ? i50 : latency_count - 1];
    p99 = latencies[i99 < latency_count ? i99 : latency_count - 1];
  }
  printf("{\"completed\":%zu,\"mismatches\":%zu,\"seconds\":%.6f,\"p50_ns\":%llu,\"p99_ns\":%llu,\"error\":", completed,
         mismatches, seconds, (unsigned long long)p50, (unsigned long long)p99);
  if (error_text[0] == '\0') printf("null}\n");
  else printf("\"%s\"}\n", error_text); /* error_text holds no quotes or backslashes */
  fflush(stdout);
  for (int i = 0; i < connections; i++) close(conns[i].fd);
  return error_text[0] == '\0' ? 0 : 1;
}
