// CUDA_INJECTION64_PATH library (tools/kernel-trace/build.sh): every kernel's start, end and name, from CUPTI
// activity records, to $TRACE_OUT, flushed every second and at exit. Kernels replayed from CUDA graphs
// are recorded too, which is what a decode step's timeline needs. With TRACE_API=1 also every driver
// call's start, end and name on the host ("api" lines, the same clock), to see what the host was doing
// while the GPU waited.
#include <cupti.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static FILE *out;
static void CUPTIAPI req(uint8_t **buffer, size_t *size, size_t *maxRecords) {
  *size = 16 << 20;
  *buffer = (uint8_t *)aligned_alloc(8, *size);
  *maxRecords = 0;
}
static void CUPTIAPI done(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
  CUpti_Activity *r = NULL;
  while (cuptiActivityGetNextRecord(buffer, valid, &r) == CUPTI_SUCCESS) {
    if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      KREC *k = (KREC *)r;
      fprintf(out, "%llu %llu %s\n", (unsigned long long)k->start, (unsigned long long)k->end, k->name);
    } else if (r->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
      CUpti_ActivityAPI *a = (CUpti_ActivityAPI *)r;
      const char *name = "?";
      cuptiGetCallbackName(CUPTI_CB_DOMAIN_DRIVER_API, a->cbid, &name);
      fprintf(out, "api %llu %llu %s\n", (unsigned long long)a->start, (unsigned long long)a->end, name);
    }
  }
  fflush(out);
  free(buffer);
}
static void *flusher(void *arg) {
  for (;;) {
    sleep(1);
    cuptiActivityFlushAll(0);
  }
  return NULL;
}
static void fin(void) { cuptiActivityFlushAll(1); fflush(out); }
int InitializeInjection(void) {
  out = fopen(getenv("TRACE_OUT"), "w");
  cuptiActivityRegisterCallbacks(req, done);
  cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  const char *api = getenv("TRACE_API");
  if (api && *api == '1') cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER);
  atexit(fin);
  pthread_t t;
  pthread_create(&t, NULL, flusher, NULL);
  return 1;
}
