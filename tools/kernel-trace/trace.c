// CUDA_INJECTION64_PATH library (tools/kernel-trace/build.sh): every kernel's start, end and name, from CUPTI
// activity records, to $TRACE_OUT, flushed every second and at exit. Kernels replayed from CUDA graphs
// are recorded too, which is what a decode step's timeline needs.
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
  atexit(fin);
  pthread_t t;
  pthread_create(&t, NULL, flusher, NULL);
  return 1;
}
