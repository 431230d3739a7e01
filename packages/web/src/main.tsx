import { render } from 'preact';
import { resume, resumeWhenOnline } from './auth';
import { App } from './components/App';
import { watchNetwork } from './network';
import { watchRoute } from './router';

watchNetwork();
resumeWhenOnline();
watchRoute();
render(<App />, document.getElementById('app')!);
void resume();
