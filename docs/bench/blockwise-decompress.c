// blockwise-decompress.c IMAGE FRAMES: restore's work on one core, two ways. The image's data is cut into 2 MiB frames
// compressed at zstd level 3 (FRAMES of them), then three rounds of: (whole) each frame decompressed at once, then
// SHA-256 over each 16 KiB chunk and a copy out; (blockwise) each frame decompressed one zstd block (<= 128 KiB) at a
// time with the hash and the copy of the chunks that block completes, while they are still in the core's cache.
// cc -O2 -o /tmp/blockwise docs/bench/blockwise-decompress.c -lzstd -lcrypto && /tmp/blockwise day1.img 400
#define _GNU_SOURCE
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#define FRAME (2<<20)
#define CH (16<<10)
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){
  int fd=open(argv[1],O_RDONLY); off_t size=lseek(fd,0,SEEK_END);
  long maxframes=atol(argv[2]);
  char*in=malloc(FRAME); char**frames=malloc(sizeof(char*)*maxframes); size_t*flen=malloc(sizeof(size_t)*maxframes);
  long n=0; off_t off=0;
  ZSTD_CCtx*cc=ZSTD_createCCtx();
  while(n<maxframes){
    off_t d=lseek(fd,off,SEEK_DATA); if(d<0)break; off=d;
    ssize_t r=pread(fd,in,FRAME,off); if(r<=0)break; off+=r;
    size_t cap=ZSTD_compressBound(r); frames[n]=malloc(cap);
    flen[n]=ZSTD_compressCCtx(cc,frames[n],cap,in,r,3); n++;
  }
  fprintf(stderr,"%ld frames\n",n);
  char*buf=aligned_alloc(4096,FRAME); size_t ring=64<<20; char*dst=malloc(ring); memset(dst,1,ring); size_t dpos=0;
  ZSTD_DCtx*dc=ZSTD_createDCtx(); unsigned char md[32]; unsigned long long x=0;
  for(int round=0;round<3;round++){
    double t=now(); size_t total=0;
    for(long i=0;i<n;i++){
      size_t m=ZSTD_decompressDCtx(dc,buf,FRAME,frames[i],flen[i]);
      for(size_t p=0;p<m;p+=CH){size_t l=m-p<CH?m-p:CH; SHA256((unsigned char*)buf+p,l,md); x+=md[0];}
      if(dpos+m>ring)dpos=0; memcpy(dst+dpos,buf,m); dpos+=m; total+=m;
    }
    double a=now()-t; t=now();
    for(long i=0;i<n;i++){
      ZSTD_decompressBegin(dc); const char*src=frames[i]; size_t pos=0, done=0;
      size_t need;
      while((need=ZSTD_nextSrcSizeToDecompress(dc))!=0){
        size_t o=ZSTD_decompressContinue(dc,buf+pos,FRAME-pos,src,need); src+=need; pos+=o;
        if(ZSTD_isError(o)){fprintf(stderr,"%s\n",ZSTD_getErrorName(o));return 1;}
        size_t ready=(pos/CH)*CH; if(ZSTD_nextSrcSizeToDecompress(dc)==0)ready=pos;
        if(ready>done){
          for(size_t p=done;p<ready;p+=CH){size_t l=ready-p<CH?ready-p:CH; SHA256((unsigned char*)buf+p,l,md); x+=md[0];}
          if(dpos+(ready-done)>ring)dpos=0; memcpy(dst+dpos,buf+done,ready-done); dpos+=ready-done; done=ready;
        }
      }
    }
    double b=now()-t;
    printf("whole %.3f s  blockwise %.3f s  (%.2f GB)\n",a,b,total/1e9);
  }
  return (int)(x&0);
}
