export * from './configuration';
export * from './ncrontab';
export * from './policy';
export * from './settings';
