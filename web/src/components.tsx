// Small shared pieces of the console's pages.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { navigate, takeClick } from './lib/router';
import { t } from './i18n';
import type { EChartsOption } from './lib/echarts';

export function Link(props: { href: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-current={props['aria-current']}
      onClick={(e) => {
        if (!takeClick(e)) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

export function jobHref(name: string): string {
  return `/jobs/${encodeURIComponent(name)}`;
}

export function ErrorBox(props: { error: unknown }) {
  if (!props.error) return null;
  const msg = props.error instanceof Error ? props.error.message : String(props.error);
  return (
    <p class="error" role="alert">
      {t('common.error', { msg })}
    </p>
  );
}

/** Load something once (and again when deps change); {data, error, loading, reload}. */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: null, loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

/** An ECharts chart: a labelled region with a canvas; the table beside it is the text form. */
export function Chart(props: { option: EChartsOption; label: string; id?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<{ setOption: (o: EChartsOption, notMerge?: boolean) => void; resize: () => void; dispose: () => void } | null>(null);
  useEffect(() => {
    let gone = false;
    let onResize: (() => void) | null = null;
    import('./lib/echarts').then((ec) => {
      if (gone || !ref.current) return;
      const c = ec.init(ref.current, undefined, { renderer: 'canvas' });
      chart.current = c;
      c.setOption(props.option, true);
      onResize = () => c.resize();
      window.addEventListener('resize', onResize);
    });
    return () => {
      gone = true;
      if (onResize) window.removeEventListener('resize', onResize);
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption(props.option, true);
  }, [props.option]);
  return <div class="chart" ref={ref} role="img" aria-label={props.label} id={props.id} data-chart={props.id} />;
}

export function Field(props: { label: string; id: string; children: ComponentChildren; hint?: ComponentChildren; wide?: boolean }) {
  return (
    <div class={props.wide ? 'field wide' : 'field'}>
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint}
    </div>
  );
}
