import { hueOf, initials } from '../format';

interface Props {
  id: string;
  name: string;
  /** Shows a presence dot: true online, false offline, undefined none. */
  online?: boolean | undefined;
  size?: 'small' | 'large';
}

export function Avatar({ id, name, online, size = 'small' }: Props) {
  return (
    <span class={`avatar avatar-${size}`} style={{ '--hue': String(hueOf(id)) }} aria-hidden="true">
      {initials(name)}
      {online !== undefined && <span class={`presence ${online ? 'online' : 'offline'}`} />}
    </span>
  );
}
