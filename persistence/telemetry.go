package persistence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/peonhq/peon/orchestration"
)

// instrumentationScope names the tracer and the meter of this package.
const instrumentationScope = "github.com/peonhq/peon/persistence"

// progressEvery is how often a long catch-up or rebuild logs its progress.
var progressEvery = 5 * time.Second

// The outcomes of an Append, the value of peon.append.outcome.
const (
	outcomeAppended        = "appended"
	outcomeDuplicate       = "duplicate"
	outcomeVersionConflict = "version_conflict"
	outcomeCommandConflict = "command_conflict"
	outcomeInvalid         = "invalid"
	outcomeUnknown         = "unknown_outcome"
	outcomeCanceled        = "canceled"
	outcomeError           = "error"
)

var outcomes = []string{outcomeAppended, outcomeDuplicate, outcomeVersionConflict, outcomeCommandConflict,
	outcomeInvalid, outcomeUnknown, outcomeCanceled, outcomeError}

// telemetry is what a store logs, traces and measures with, built once
// from its Options (see docs/OBSERVABILITY.md). With no TracerProvider
// and no MeterProvider, its span and measure helpers do nothing and
// allocate nothing.
type telemetry struct {
	log      *slog.Logger
	tracer   trace.Tracer
	meter    metric.Meter
	tracing  bool // a TracerProvider was given
	metering bool // a MeterProvider was given
	system   attribute.KeyValue

	appended  metric.Int64Counter
	latency   metric.Float64Histogram
	byOutcome map[string]metric.MeasurementOption // the attributes of each outcome

	lagGauge metric.Int64ObservableGauge
	lagReg   metric.Registration
	subsMu   sync.Mutex
	subs     map[*atomic.Int64]struct{} // the last sequence each live subscription handed over
}

// newTelemetry builds the telemetry of a store of dialect d from o. An
// instrument the MeterProvider cannot make is logged and left out.
func newTelemetry(o *Options, d dialect) *telemetry {
	t := &telemetry{
		log:      o.Logger,
		tracing:  o.TracerProvider != nil,
		metering: o.MeterProvider != nil,
		system:   attribute.String("db.system.name", systemName(d.name())),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	tp, mp := o.TracerProvider, o.MeterProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	t.tracer = tp.Tracer(instrumentationScope)
	t.meter = mp.Meter(instrumentationScope)
	meter := t.meter
	var errs []error
	var err error
	t.appended, err = meter.Int64Counter("peon.append.events",
		metric.WithUnit("{event}"), metric.WithDescription("Events passed to Append, by outcome."))
	errs = append(errs, err)
	t.latency, err = meter.Float64Histogram("peon.append.duration",
		metric.WithUnit("s"), metric.WithDescription("How long an Append took, by outcome."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	errs = append(errs, err)
	t.lagGauge, err = meter.Int64ObservableGauge("peon.subscribe.lag",
		metric.WithUnit("{event}"), metric.WithDescription("Events the slowest live subscription of the store is behind the head of the log."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		t.log.Warn("peon: could not create every metric instrument", "err", err)
	}
	t.byOutcome = make(map[string]metric.MeasurementOption, len(outcomes))
	for _, o := range outcomes {
		t.byOutcome[o] = metric.WithAttributeSet(attribute.NewSet(t.system, attribute.String("peon.append.outcome", o)))
	}
	return t
}

// systemName is the OpenTelemetry db.system.name of a dialect.
func systemName(dialect string) string {
	if dialect == "postgres" {
		return "postgresql"
	}
	return dialect
}

// observeLag registers the callback of peon.subscribe.lag, which reads
// the head of s's log at each collection while a subscription is live.
func (t *telemetry) observeLag(s *Store) {
	if !t.metering || t.lagGauge == nil {
		return
	}
	attrs := metric.WithAttributeSet(attribute.NewSet(t.system))
	reg, err := t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		low, ok := t.slowest()
		if !ok || s.closed.Load() {
			return nil
		}
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(t.lagGauge, max(head-low, 0), attrs)
		return nil
	}, t.lagGauge)
	if err != nil {
		t.log.Warn("peon: could not register the subscriber lag gauge", "err", err)
		return
	}
	t.lagReg = reg
}

// stop unregisters the callbacks of t.
func (t *telemetry) stop() {
	if t.lagReg != nil {
		t.lagReg.Unregister()
	}
}

// subscribed registers a live subscription that has handed over the
// events up to after, and returns its position, which the subscription
// stores as it goes, and the func that unregisters it. Without a
// MeterProvider the position is nil and the func does nothing.
func (t *telemetry) subscribed(after int64) (*atomic.Int64, func()) {
	if !t.metering {
		return nil, func() {}
	}
	pos := new(atomic.Int64)
	pos.Store(after)
	t.subsMu.Lock()
	if t.subs == nil {
		t.subs = map[*atomic.Int64]struct{}{}
	}
	t.subs[pos] = struct{}{}
	t.subsMu.Unlock()
	return pos, func() {
		t.subsMu.Lock()
		delete(t.subs, pos)
		t.subsMu.Unlock()
	}
}

// slowest returns the lowest position of the live subscriptions.
func (t *telemetry) slowest() (int64, bool) {
	t.subsMu.Lock()
	defer t.subsMu.Unlock()
	var low int64
	first := true
	for pos := range t.subs {
		if v := pos.Load(); first || v < low {
			low, first = v, false
		}
	}
	return low, !first
}

// endFunc ends a span, recording err (nil: success) and attrs on it.
type endFunc func(err error, attrs ...attribute.KeyValue)

func endNothing(error, ...attribute.KeyValue) {}

// start begins the span name, a child of ctx's, when a TracerProvider was
// given; call the returned func once the work is done.
func (t *telemetry) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, endFunc) {
	if !t.tracing {
		return ctx, endNothing
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithAttributes(t.system), trace.WithAttributes(attrs...))
	return ctx, func(err error, attrs ...attribute.KeyValue) {
		span.SetAttributes(attrs...)
		endSpan(span, err)
	}
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// appendDone ends what startAppend began: fresh is false when the
// records are those of a command stored before.
type appendDone func(recs []Recorded, fresh bool, err error)

func appendNothing([]Recorded, bool, error) {}

// startAppend begins the span and the measures of an Append of events.
// Without a TracerProvider and a MeterProvider it does nothing.
func (t *telemetry) startAppend(ctx context.Context, events []orchestration.Event) (context.Context, appendDone) {
	if !t.tracing && !t.metering {
		return ctx, appendNothing
	}
	began := time.Now()
	var span trace.Span
	if t.tracing {
		ctx, span = t.tracer.Start(ctx, "peon.append", trace.WithAttributes(t.system,
			attribute.Int("peon.append.events", len(events)), attribute.Int("peon.append.streams", countStreams(events))))
	}
	return ctx, func(recs []Recorded, fresh bool, err error) {
		o := appendOutcome(len(events), fresh, err)
		if t.metering {
			t.appended.Add(ctx, int64(len(events)), t.byOutcome[o])
			t.latency.Record(ctx, time.Since(began).Seconds(), t.byOutcome[o])
		}
		if span != nil {
			span.SetAttributes(attribute.String("peon.append.outcome", o))
			if len(recs) > 0 {
				span.SetAttributes(attribute.Int64("peon.sequence.first", recs[0].Sequence),
					attribute.Int64("peon.sequence.last", recs[len(recs)-1].Sequence))
			}
			endSpan(span, err)
		}
	}
}

// countStreams is the number of distinct streams of events.
func countStreams(events []orchestration.Event) int {
	seen := make([]string, 0, 4)
	for _, e := range events {
		if e == nil {
			continue
		}
		if st := e.StreamID(); !containsString(seen, st) {
			seen = append(seen, st)
		}
	}
	return len(seen)
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// appendOutcome classifies the result of an Append of n events.
func appendOutcome(n int, fresh bool, err error) string {
	switch {
	case err == nil && (fresh || n == 0):
		return outcomeAppended
	case err == nil:
		return outcomeDuplicate
	case errors.Is(err, ErrUnknownOutcome):
		return outcomeUnknown
	case errors.Is(err, ErrInvalidEvent):
		return outcomeInvalid
	case errors.Is(err, ErrVersionConflict):
		return outcomeVersionConflict
	case errors.Is(err, ErrCommandConflict):
		return outcomeCommandConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return outcomeCanceled
	}
	return outcomeError
}

// progress returns a progress callback that calls user (when not nil) and
// logs what's progress at most every progressEvery.
func (t *telemetry) progress(what string, user func(done, total int64)) func(done, total int64) {
	if !t.log.Enabled(context.Background(), slog.LevelInfo) {
		return user
	}
	last := time.Now()
	return func(done, total int64) {
		if user != nil {
			user(done, total)
		}
		if now := time.Now(); now.Sub(last) >= progressEvery && done < total {
			t.log.Info("peon: "+what+" progress", "done", done, "events", total)
			last = now
		}
	}
}

// op begins work an operator runs or waits for: it logs "peon: <what>
// started" with kv (pairs of a key and an int, int64, bool or string) and
// begins the span "peon.<span>" with them as peon.<span>.<key>
// attributes. The func it returns ends both: an Info line "peon: <what>
// done" with its own kv and the duration, or a Warn line "peon: <what>
// failed" with the error.
func (t *telemetry) op(ctx context.Context, span, what string, kv ...any) (context.Context, func(err error, kv ...any)) {
	ctx, started, done := t.quietOp(ctx, span, what)
	started(kv...)
	return ctx, done
}

// quietOp is op for work that often finds nothing to do: it begins the
// span at once, but logs only once started is called, and then (or on an
// error) the line of done.
func (t *telemetry) quietOp(ctx context.Context, span, what string) (_ context.Context, started func(kv ...any), done func(err error, kv ...any)) {
	began := time.Now()
	ctx, end := t.start(ctx, "peon."+span)
	logged := false
	started = func(kv ...any) {
		logged = true
		t.log.InfoContext(ctx, "peon: "+what+" started", kv...)
		if t.tracing {
			trace.SpanFromContext(ctx).SetAttributes(t.attributes(span, kv)...)
		}
	}
	return ctx, started, func(err error, kv ...any) {
		end(err, t.attributes(span, kv)...)
		args := append(kv, "duration", time.Since(began))
		switch {
		case err != nil:
			t.log.WarnContext(ctx, "peon: "+what+" failed", append(args, "err", err)...)
		case logged:
			t.log.InfoContext(ctx, "peon: "+what+" done", args...)
		}
	}
}

// attributes turns the pairs kv of op into span attributes named
// peon.<span>.<key>; none without a TracerProvider.
func (t *telemetry) attributes(span string, kv []any) []attribute.KeyValue {
	if !t.tracing {
		return nil
	}
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k := attribute.Key("peon." + span + "." + fmt.Sprint(kv[i]))
		switch v := kv[i+1].(type) {
		case int:
			attrs = append(attrs, k.Int(v))
		case int64:
			attrs = append(attrs, k.Int64(v))
		case bool:
			attrs = append(attrs, k.Bool(v))
		default:
			attrs = append(attrs, k.String(fmt.Sprint(v)))
		}
	}
	return attrs
}

// failures returns a func that background work named what calls with the
// result of each attempt: it logs the first error of a run of failures and
// the recovery after it, not every retry.
func (t *telemetry) failures(what string) func(ctx context.Context, err error) {
	failing := false
	return func(ctx context.Context, err error) {
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			t.log.Warn("peon: "+what+" failed; retrying", "err", err)
		case err == nil && failing:
			failing = false
			t.log.Info("peon: " + what + " recovered")
		}
	}
}
