package bench

import (
	"context"
	"math/bits"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"

	"github.com/keyturn/keyturn/keystore"
)

// hitResults holds the ns/op of each keyturn case of BenchmarkHitParallel
// in this process, by case, so the aws-caching case can report how many
// times slower it is than keyturn in the same run. The framework calls a
// benchmark first with b.N = 1 and then with larger b.N up to the one it
// prints, so each call with b.N = 1 starts a new result and each later
// call replaces it.
var hitResults struct {
	sync.Mutex
	byCase map[string][]float64
}

func recordHits(name string, n int, nsPerOp float64) {
	hitResults.Lock()
	defer hitResults.Unlock()
	if hitResults.byCase == nil {
		hitResults.byCase = map[string][]float64{}
	}
	results := hitResults.byCase[name]
	if n == 1 || len(results) == 0 {
		hitResults.byCase[name] = append(results, nsPerOp)
		return
	}
	results[len(results)-1] = nsPerOp
}

// meanHits returns the mean of the results recorded for name, or 0.
func meanHits(name string) float64 {
	hitResults.Lock()
	defer hitResults.Unlock()
	results := hitResults.byCase[name]
	if len(results) == 0 {
		return 0
	}
	var sum float64
	for _, r := range results {
		sum += r
	}
	return sum / float64(len(results))
}

// keySource is the method the router reads a provider key through on each
// upstream request: an interface that *keystore.Cache satisfies, so the
// call is dynamic, as it is in the router.
type keySource interface {
	Get(ctx context.Context, secretID string) (keystore.Keys, error)
}

// BenchmarkHitParallel reads one cached secret from every processor: the
// path the router takes on each upstream request.
func BenchmarkHitParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("keyturn", func(b *testing.B) {
		var cache keySource = newKeyturnCache(b, newMemClient(), keystore.CacheOptions{}, nil)
		read := func() {
			if k, err := cache.Get(ctx, benchSecret); err != nil || k.Current.VersionID != currentID {
				b.Fatalf("Get = version %s, %v; want %s", k.Current.VersionID, err, currentID)
			}
		}
		recordHits("keyturn", b.N, runKeyturnHits(b, read))
	})
	b.Run("keyturn-handle", func(b *testing.B) {
		secret := newKeyturnCache(b, newMemClient(), keystore.CacheOptions{}, nil).Secret(benchSecret)
		read := func() {
			k, err := secret.Get(ctx)
			if err != nil || k.Current.VersionID != currentID {
				b.Fatalf("Get: %v", err)
			}
		}
		recordHits("keyturn-handle", b.N, runKeyturnHits(b, read))
	})
	b.Run("aws-caching", func(b *testing.B) {
		cache := newAWSCache(b, newMemClient(), time.Hour)
		read := func() {
			if v, err := cache.GetSecretStringWithContext(ctx, benchSecret); err != nil || v != currentValue {
				b.Fatalf("GetSecretString: %v", err)
			}
		}
		read()
		nsPerOp := runHits(b, read)
		if keyturn := meanHits("keyturn"); keyturn > 0 {
			b.ReportMetric(nsPerOp/keyturn, "x-keyturn-ns/op")
		}
		if handle := meanHits("keyturn-handle"); handle > 0 {
			b.ReportMetric(nsPerOp/handle, "x-handle-ns/op")
		}
	})
}

// runKeyturnHits fills the cache with a first read, checks that a hit
// allocates nothing and returns the ns/op of hits.
func runKeyturnHits(b *testing.B, read func()) float64 {
	read()
	if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
		b.Fatalf("a hit allocates %v times, want 0", allocs)
	}
	return runHits(b, read)
}

// runHits runs read b.N times from every processor and returns its
// ns/op.
func runHits(b *testing.B, read func()) float64 {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			read()
		}
	})
	b.StopTimer()
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// BenchmarkReadDuringRefresh measures the p99 latency of reads while a
// refresh is in flight against the p99 of reads with none, with one reader
// per processor. It reports ns-p99-idle, ns-p99-refreshing, their ratio,
// and the number of reads of each phase that took 1 ms or more. That count
// matters because a reader blocked by a refresh makes no further reads
// meanwhile, so blocked reads can be too few to reach the p99.
//
// keyturn refreshes in the background. Its refreshing phase reads from a
// cache with a 10 ms refresh interval whose timer has started a fetch that
// the store holds for the whole phase, so every read finds a fetch in
// flight. aws-caching refreshes in the reader that finds the TTL expired,
// holding the secret's lock, so a fetch held for good would stall every
// reader for good. Its refreshing phase instead reads from a cache with a
// TTL of 1 ms whose store takes 1 ms for every call.
func BenchmarkReadDuringRefresh(b *testing.B) {
	ctx := context.Background()
	b.Run("keyturn", func(b *testing.B) {
		idleCache := newKeyturnCache(b, newMemClient(), keystore.CacheOptions{}, nil)
		heldClient := newMemClient()
		refreshCache := newKeyturnCache(b, heldClient, keystore.CacheOptions{
			RefreshInterval: 10 * time.Millisecond, Jitter: -1,
		}, heldClient.release)
		readFrom := func(c *keystore.Cache) func() {
			return func() {
				if _, err := c.Get(ctx, benchSecret); err != nil {
					b.Fatalf("Get: %v", err)
				}
			}
		}
		readFrom(idleCache)()
		readFrom(refreshCache)()
		heldClient.block()
		<-heldClient.entered // the timer's fetch, held until Cleanup
		b.ResetTimer()
		idle := measureReads(b.N, readFrom(idleCache))
		refreshing := measureReads(b.N, readFrom(refreshCache))
		b.StopTimer()
		reportP99(b, idle, refreshing)
	})
	b.Run("aws-caching", func(b *testing.B) {
		idleCache := newAWSCache(b, newMemClient(), time.Hour)
		slowClient := newMemClient()
		refreshCache := newAWSCache(b, slowClient, time.Millisecond)
		readFrom := func(c *secretcache.Cache) func() {
			return func() {
				if _, err := c.GetSecretStringWithContext(ctx, benchSecret); err != nil {
					b.Fatalf("GetSecretString: %v", err)
				}
			}
		}
		readFrom(idleCache)()
		readFrom(refreshCache)()
		slowClient.setDelay(time.Millisecond)
		b.ResetTimer()
		idle := measureReads(b.N, readFrom(idleCache))
		refreshing := measureReads(b.N, readFrom(refreshCache))
		b.StopTimer()
		reportP99(b, idle, refreshing)
	})
}

// reportP99 reports the p99 of both phases, their ratio, and how many
// reads of each phase took a millisecond or more.
func reportP99(b *testing.B, idle, refreshing *histogram) {
	b.ReportMetric(idle.quantile(0.99), "ns-p99-idle")
	b.ReportMetric(refreshing.quantile(0.99), "ns-p99-refreshing")
	b.ReportMetric(refreshing.quantile(0.99)/idle.quantile(0.99), "p99-ratio")
	b.ReportMetric(float64(idle.countFrom(time.Millisecond)), "reads>=1ms-idle")
	b.ReportMetric(float64(refreshing.countFrom(time.Millisecond)), "reads>=1ms-refreshing")
}

// measureReads runs n reads spread over one goroutine per processor and
// returns the histogram of their latencies.
func measureReads(n int, read func()) *histogram {
	readers := runtime.GOMAXPROCS(0)
	per := max(n/readers, 1)
	hists := make([]histogram, readers)
	var wg sync.WaitGroup
	for i := range hists {
		h := &hists[i]
		wg.Go(func() {
			for range per {
				start := time.Now()
				read()
				h.add(time.Since(start))
			}
		})
	}
	wg.Wait()
	all := &histogram{}
	for i := range hists {
		all.merge(&hists[i])
	}
	return all
}

// histogram counts latencies in log-linear buckets: 16 per power of two,
// so a quantile is exact to within about 6%. It has a fixed size, so
// recording a read allocates nothing however many reads a run makes.
type histogram struct {
	counts [64 << subBucketBits]uint64
	total  uint64
}

const subBucketBits = 4

func bucketOf(ns uint64) int {
	if ns < 1<<subBucketBits {
		return int(ns)
	}
	shift := bits.Len64(ns) - 1 - subBucketBits
	return (shift+1)<<subBucketBits | int(ns>>shift)&(1<<subBucketBits-1)
}

// bucketMid is the middle of bucket i's range of nanoseconds.
func bucketMid(i int) float64 {
	if i < 1<<subBucketBits {
		return float64(i)
	}
	shift := i>>subBucketBits - 1
	low := uint64(i&(1<<subBucketBits-1)|1<<subBucketBits) << shift
	return float64(low) + float64(uint64(1)<<shift)/2
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// countFrom returns the number of latencies in buckets from d's on.
func (h *histogram) countFrom(d time.Duration) uint64 {
	var n uint64
	for _, c := range h.counts[bucketOf(uint64(d)):] {
		n += c
	}
	return n
}

func (h *histogram) quantile(q float64) float64 {
	rank := uint64(q * float64(h.total))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return bucketMid(i)
		}
	}
	return 0
}

// newKeyturnCache returns a keyturn cache over client through the AWS
// store. beforeClose, if set, runs before the cache closes.
func newKeyturnCache(b *testing.B, client *memClient, opts keystore.CacheOptions, beforeClose func()) *keystore.Cache {
	b.Helper()
	cache, err := keystore.NewCache(keystore.NewAWS(client, keystore.AWSOptions{}), opts)
	if err != nil {
		b.Fatalf("NewCache: %v", err)
	}
	b.Cleanup(func() {
		if beforeClose != nil {
			beforeClose()
		}
		cache.Close()
	})
	return cache
}

// newAWSCache returns an aws-secretsmanager-caching-go cache over client
// whose items refresh after about ttl.
func newAWSCache(b *testing.B, client *memClient, ttl time.Duration) *secretcache.Cache {
	b.Helper()
	cache, err := secretcache.New(func(c *secretcache.Cache) {
		c.Client = client
		c.CacheItemTTL = ttl.Nanoseconds()
	})
	if err != nil {
		b.Fatalf("secretcache.New: %v", err)
	}
	return cache
}
