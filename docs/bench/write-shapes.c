// write-shapes.c FILE MODE [KIB]: the kernel's cost of writing 1.5 GB into a new, preallocated file in the shapes a
// restore can write it, single-threaded; write-back started for every 8 MiB written, pages dropped 64 MiB behind (as
// restore does), fsync at the end. Prints wall, system and user seconds of this process and the number of writes.
//   mode 0: 2 MiB runs written as 176 KiB pieces with a 16 KiB gap after each; the gaps filled after every 8 MiB
//           (a restore of a snapshot whose changed chunks come from other frames)
//   mode 1: the same runs written whole, then the same 16 KiB pieces written over them
//   mode 2: whole 2 MiB runs          mode 3: KIB-sized pieces (default 192)          mode 4: 16 KiB pieces
//   mode 5: whole 2 MiB runs, each 4 KiB past a 2 MiB boundary
// SHIFT=4096 in the environment moves every write 4 KiB off the 2 MiB boundaries.
// cc -O2 -o /tmp/write-shapes docs/bench/write-shapes.c && for m in 0 1 2 3 4 5; do /tmp/write-shapes /tmp/ws.img $m; done
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <time.h>
#define RUN (2<<20)
#define GAP (16<<10)
static long EVERY=192<<10;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){
  int mode=atoi(argv[2]); if(argc>3) EVERY=atol(argv[3])<<10; long total=1500L<<20; total-=total%RUN;
  long SH=getenv("SHIFT")?atol(getenv("SHIFT")):0;
  unlink(argv[1]); int fd=open(argv[1],O_RDWR|O_CREAT|O_EXCL,0600);
  fallocate(fd,0,0,total);
  char*buf=aligned_alloc(4096,RUN); memset(buf,7,RUN);
  double t=now(); long writes=0;
  for(long base=0;base<total;base+=RUN){
    if(mode==0){
      for(long o=0;o<RUN;o+=EVERY){ long end=o+EVERY-GAP; if(end>RUN)end=RUN; pwrite(fd,buf+o,end-o,SH+base+o); writes++; }
    } else if(mode<3) { pwrite(fd,buf,RUN,SH+base); writes++; }
    if(mode==3){ for(long o=0;o<RUN;o+=EVERY){ long end=o+EVERY; if(end>RUN)end=RUN; pwrite(fd,buf+o,end-o,SH+base+o); writes++; } }
    if(mode==5){ pwrite(fd,buf,RUN,SH+base+4096); writes++; }
    if(mode==4){ for(long o=0;o<RUN;o+=16384){ pwrite(fd,buf+o,16384,SH+base+o); writes++; } }
    // the gaps, as a later frame would write them: after 8 MiB of runs
    if((base+RUN)%(8<<20)==0){
      if(mode<2) for(long b=base+RUN-(8<<20);b<base+RUN;b+=RUN)
        for(long o=EVERY-GAP;o<RUN;o+=EVERY){ pwrite(fd,buf,GAP,SH+b+o); writes++; }
      sync_file_range(fd,base+RUN-(8<<20),8<<20,SYNC_FILE_RANGE_WRITE);
      if(base>(64<<20)) posix_fadvise(fd,base+RUN-(72<<20),8<<20,POSIX_FADV_DONTNEED);
    }
  }
  fsync(fd);
  struct rusage ru; getrusage(RUSAGE_SELF,&ru);
  printf("mode %d: %.3f s wall, %.3f s sys, %.3f s user, %ld writes\n",mode,now()-t,ru.ru_stime.tv_sec+ru.ru_stime.tv_usec/1e6,ru.ru_utime.tv_sec+ru.ru_utime.tv_usec/1e6,writes);
  unlink(argv[1]); return 0;
}
