// Svelte 5 compiles `<script lang="ts">` natively (type annotations only); vitePreprocess covers the rest.
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';
export default { preprocess: vitePreprocess() };
