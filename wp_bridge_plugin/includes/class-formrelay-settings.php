<?php
/**
 * FormRelay Bridge's settings: one option, overridden by wp-config.php constants.
 *
 * The option `formrelay_bridge_settings` holds:
 *
 * - `sidecar_url` (string): where the sidecar listens, e.g. http://127.0.0.1:8787;
 * - `shared_secret` (string): signs the notify requests (never shown again);
 * - `forms`: 'all' or a list of form ids whose submissions are queued;
 * - `form_settings`: form id => array( 'template' => 'x.j2' or '', 'priority' => 0..100 );
 * - `remove_data_on_uninstall` (bool): whether uninstall.php drops the tables.
 *
 * The constants FORMRELAY_SIDECAR_URL and FORMRELAY_SHARED_SECRET, when
 * defined and not empty, win over the option.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads, validates and registers the settings.
 */
final class FormRelay_Settings {

	const OPTION           = 'formrelay_bridge_settings';
	const GROUP            = 'formrelay_bridge';
	const TEMPLATE_PATTERN = '/^[A-Za-z0-9_.-]+\.j2$/';
	const DEFAULT_PRIORITY = 10;
	const MIN_PRIORITY     = 0;
	const MAX_PRIORITY     = 100;
	const MIN_SECRET_BYTES = 16;
	const URL_CONSTANT     = 'FORMRELAY_SIDECAR_URL';
	const SECRET_CONSTANT  = 'FORMRELAY_SHARED_SECRET';

	/**
	 * The settings when nothing is stored.
	 *
	 * @return array{sidecar_url: string, shared_secret: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int}>, remove_data_on_uninstall: bool}
	 */
	public static function defaults() {
		return array(
			'sidecar_url'              => '',
			'shared_secret'            => '',
			'forms'                    => 'all',
			'form_settings'            => array(),
			'remove_data_on_uninstall' => false,
		);
	}

	/**
	 * Register the option with the Settings API (hooked to `init`, so that its
	 * sanitize callback guards every update_option(), not only the form).
	 *
	 * @return void
	 */
	public static function register() {
		register_setting(
			self::GROUP,
			self::OPTION,
			array(
				'type'              => 'array',
				'description'       => 'FormRelay Bridge settings',
				'sanitize_callback' => array( __CLASS__, 'sanitize' ),
				'default'           => self::defaults(),
				'show_in_rest'      => false,
			)
		);
	}

	/**
	 * Activation: store the defaults unless settings exist, autoloaded, so that
	 * reading them costs no query (a missing option is one SELECT per request).
	 *
	 * @return void
	 */
	public static function activate() {
		add_option( self::OPTION, self::defaults(), '', 'yes' );
	}

	/**
	 * The stored settings, every key present and well-typed.
	 *
	 * @return array{sidecar_url: string, shared_secret: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int}>, remove_data_on_uninstall: bool}
	 */
	public static function get() {
		return self::normalize( get_option( self::OPTION, array() ) );
	}

	/**
	 * The sidecar's base URL: the constant when set, else the option ('' = none).
	 *
	 * @return string
	 */
	public static function sidecar_url() {
		$constant = self::constant_value( self::URL_CONSTANT );
		if ( null !== $constant ) {
			return untrailingslashit( $constant );
		}
		return self::get()['sidecar_url'];
	}

	/**
	 * The shared secret: the constant when set, else the option ('' = none).
	 *
	 * @return string
	 */
	public static function shared_secret() {
		$constant = self::constant_value( self::SECRET_CONSTANT );
		return null !== $constant ? $constant : self::get()['shared_secret'];
	}

	/**
	 * Whether wp-config.php sets the sidecar URL.
	 *
	 * @return bool
	 */
	public static function url_from_constant() {
		return null !== self::constant_value( self::URL_CONSTANT );
	}

	/**
	 * Whether wp-config.php sets the shared secret.
	 *
	 * @return bool
	 */
	public static function secret_from_constant() {
		return null !== self::constant_value( self::SECRET_CONSTANT );
	}

	/**
	 * Whether submissions of this form are queued.
	 *
	 * @param int $form_id Form (post) id.
	 * @return bool
	 */
	public static function form_selected( $form_id ) {
		$forms = self::get()['forms'];
		return 'all' === $forms || in_array( (int) $form_id, $forms, true );
	}

	/**
	 * The payload template the sidecar should use for this form, or null (its default).
	 *
	 * @param int $form_id Form (post) id.
	 * @return string|null
	 */
	public static function form_template( $form_id ) {
		$settings = self::get()['form_settings'];
		$template = isset( $settings[ (int) $form_id ] ) ? $settings[ (int) $form_id ]['template'] : '';
		return '' === $template ? null : $template;
	}

	/**
	 * The queue priority of this form's jobs (lower is sooner).
	 *
	 * @param int $form_id Form (post) id.
	 * @return int
	 */
	public static function form_priority( $form_id ) {
		$settings = self::get()['form_settings'];
		return isset( $settings[ (int) $form_id ] ) ? $settings[ (int) $form_id ]['priority'] : self::DEFAULT_PRIORITY;
	}

	/**
	 * Whether a template name is acceptable (a file name ending in .j2, no path).
	 *
	 * @param mixed $name Candidate.
	 * @return bool
	 */
	public static function valid_template( $name ) {
		return is_string( $name ) && 1 === preg_match( self::TEMPLATE_PATTERN, $name );
	}

	/**
	 * A priority as an int in range, or null when it is not one.
	 *
	 * @param mixed $value Candidate (an int, or digits as the form posts them).
	 * @return int|null
	 */
	public static function parse_priority( $value ) {
		if ( is_int( $value ) ) {
			$number = $value;
		} elseif ( is_string( $value ) && 1 === preg_match( '/^\s*\d{1,3}\s*$/', $value ) ) {
			$number = (int) trim( $value );
		} else {
			return null;
		}
		return ( $number >= self::MIN_PRIORITY && $number <= self::MAX_PRIORITY ) ? $number : null;
	}

	/**
	 * The Settings API sanitize callback: the new stored value.
	 *
	 * Keys missing from the input keep their stored value, so a partial
	 * update_option() and the form (whose disabled inputs are not posted)
	 * both work; its own output is a valid input (WordPress may run it twice).
	 * An empty secret keeps the stored one; `clear_shared_secret` removes it.
	 * A bad value is refused with a settings error and the old value kept.
	 *
	 * @param mixed $input The posted (unslashed) or updated value.
	 * @return array The settings to store.
	 */
	public static function sanitize( $input ) {
		$old = self::get();
		if ( ! is_array( $input ) ) {
			return $old;
		}
		$new = $old;

		if ( array_key_exists( 'sidecar_url', $input ) ) {
			$url = self::clean_url( $input['sidecar_url'] );
			if ( null === $url ) {
				self::error( 'sidecar_url', __( 'The sidecar URL must be an http:// or https:// address with a host name; the previous URL was kept.', 'formrelay-bridge' ) );
			} else {
				$new['sidecar_url'] = $url;
			}
		}

		if ( ! empty( $input['clear_shared_secret'] ) ) {
			$new['shared_secret'] = '';
		} elseif ( isset( $input['shared_secret'] ) && is_string( $input['shared_secret'] ) && '' !== $input['shared_secret'] ) {
			$secret = $input['shared_secret'];
			if ( strlen( $secret ) < self::MIN_SECRET_BYTES || preg_match( '/[\x00-\x1f\x7f]/', $secret ) ) {
				self::error(
					'shared_secret',
					sprintf(
						/* translators: %d: minimum length of the secret. */
						__( 'The shared secret must be at least %d characters without control characters; the previous secret was kept.', 'formrelay-bridge' ),
						self::MIN_SECRET_BYTES
					)
				);
			} else {
				$new['shared_secret'] = $secret;
			}
		}

		if ( isset( $input['forms_mode'] ) ) {
			if ( 'all' === $input['forms_mode'] ) {
				$new['forms'] = 'all';
			} else {
				$new['forms'] = self::clean_ids( isset( $input['forms'] ) ? $input['forms'] : array() );
			}
		} elseif ( array_key_exists( 'forms', $input ) ) {
			$new['forms'] = 'all' === $input['forms'] ? 'all' : self::clean_ids( $input['forms'] );
		}

		if ( isset( $input['form_settings'] ) && is_array( $input['form_settings'] ) ) {
			$new['form_settings'] = self::clean_form_settings( $input['form_settings'], $old['form_settings'] );
		}

		if ( array_key_exists( 'remove_data_on_uninstall', $input ) ) {
			$new['remove_data_on_uninstall'] = ! empty( $input['remove_data_on_uninstall'] );
		}

		return $new;
	}

	/**
	 * A value read from the database, with every key present and well-typed.
	 *
	 * @param mixed $value The stored option.
	 * @return array{sidecar_url: string, shared_secret: string, forms: string|int[], form_settings: array<int, array{template: string, priority: int}>, remove_data_on_uninstall: bool}
	 */
	private static function normalize( $value ) {
		$settings = self::defaults();
		if ( ! is_array( $value ) ) {
			return $settings;
		}
		if ( isset( $value['sidecar_url'] ) && is_string( $value['sidecar_url'] ) ) {
			$settings['sidecar_url'] = $value['sidecar_url'];
		}
		if ( isset( $value['shared_secret'] ) && is_string( $value['shared_secret'] ) ) {
			$settings['shared_secret'] = $value['shared_secret'];
		}
		// Anything but a list means all forms: a damaged option must not stop capture.
		if ( isset( $value['forms'] ) && is_array( $value['forms'] ) ) {
			$settings['forms'] = self::clean_ids( $value['forms'] );
		}
		if ( isset( $value['form_settings'] ) && is_array( $value['form_settings'] ) ) {
			foreach ( $value['form_settings'] as $form_id => $one ) {
				$form_id = absint( $form_id );
				if ( $form_id < 1 || ! is_array( $one ) ) {
					continue;
				}
				$template = isset( $one['template'] ) && self::valid_template( $one['template'] ) ? $one['template'] : '';
				$priority = isset( $one['priority'] ) ? self::parse_priority( $one['priority'] ) : null;

				$settings['form_settings'][ $form_id ] = array(
					'template' => $template,
					'priority' => null === $priority ? self::DEFAULT_PRIORITY : $priority,
				);
			}
		}
		$settings['remove_data_on_uninstall'] = ! empty( $value['remove_data_on_uninstall'] );
		return $settings;
	}

	/**
	 * Per-form settings from input; a bad value keeps the form's old one.
	 *
	 * Forms left at the defaults (no template, priority 10) are not stored;
	 * forms the input does not mention keep their stored settings.
	 *
	 * @param array $input Form id => array( 'template' => ..., 'priority' => ... ).
	 * @param array $old   The stored per-form settings.
	 * @return array<int, array{template: string, priority: int}>
	 */
	private static function clean_form_settings( array $input, array $old ) {
		// Forms the input does not mention (e.g. drafts, not on the page) keep theirs.
		$clean = array_diff_key( $old, array_flip( array_map( 'absint', array_keys( $input ) ) ) );
		foreach ( $input as $form_id => $one ) {
			$form_id = absint( $form_id );
			if ( $form_id < 1 || ! is_array( $one ) ) {
				continue;
			}
			$before   = isset( $old[ $form_id ] ) ? $old[ $form_id ] : array(
				'template' => '',
				'priority' => self::DEFAULT_PRIORITY,
			);
			$template = $before['template'];
			$priority = $before['priority'];

			if ( array_key_exists( 'template', $one ) ) {
				$candidate = is_string( $one['template'] ) ? trim( $one['template'] ) : null;
				if ( '' === $candidate ) {
					$template = '';
				} elseif ( self::valid_template( $candidate ) ) {
					$template = $candidate;
				} else {
					self::error(
						'template_' . $form_id,
						sprintf(
							/* translators: %d: form id. */
							__( 'The template of form %d must be a file name ending in .j2 (letters, digits, "_", "." and "-" only); its previous template was kept.', 'formrelay-bridge' ),
							$form_id
						)
					);
				}
			}
			if ( array_key_exists( 'priority', $one ) ) {
				$candidate = is_string( $one['priority'] ) && '' === trim( $one['priority'] ) ? self::DEFAULT_PRIORITY : self::parse_priority( $one['priority'] );
				if ( null === $candidate ) {
					self::error(
						'priority_' . $form_id,
						sprintf(
							/* translators: 1: form id, 2: lowest priority, 3: highest priority. */
							__( 'The priority of form %1$d must be a whole number from %2$d to %3$d; its previous priority was kept.', 'formrelay-bridge' ),
							$form_id,
							self::MIN_PRIORITY,
							self::MAX_PRIORITY
						)
					);
				} else {
					$priority = $candidate;
				}
			}
			if ( '' !== $template || self::DEFAULT_PRIORITY !== $priority ) {
				$clean[ $form_id ] = array(
					'template' => $template,
					'priority' => $priority,
				);
			}
		}
		ksort( $clean );
		return $clean;
	}

	/**
	 * A sidecar URL without its trailing slash, '' for none, or null when invalid.
	 *
	 * @param mixed $value Candidate.
	 * @return string|null
	 */
	private static function clean_url( $value ) {
		if ( ! is_string( $value ) ) {
			return null;
		}
		$value = trim( $value );
		if ( '' === $value ) {
			return '';
		}
		$parts = wp_parse_url( $value );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] )
			|| ! in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true )
			|| isset( $parts['user'] ) || isset( $parts['query'] ) || isset( $parts['fragment'] )
			|| preg_match( '/[\s<>"\'\\\\]/', $value ) ) {
			return null;
		}
		return untrailingslashit( $value );
	}

	/**
	 * Distinct positive ids from a list (anything else gives an empty list).
	 *
	 * @param mixed $value Candidate list.
	 * @return int[]
	 */
	private static function clean_ids( $value ) {
		if ( ! is_array( $value ) ) {
			return array();
		}
		$ids = array();
		foreach ( $value as $id ) {
			if ( ( is_int( $id ) || ( is_string( $id ) && ctype_digit( $id ) ) ) && absint( $id ) > 0 ) {
				$ids[] = absint( $id );
			}
		}
		$ids = array_values( array_unique( $ids ) );
		sort( $ids );
		return $ids;
	}

	/**
	 * A wp-config.php constant's value when it is a non-empty string, else null.
	 *
	 * @param string $name Constant name.
	 * @return string|null
	 */
	private static function constant_value( $name ) {
		if ( ! defined( $name ) ) {
			return null;
		}
		$value = constant( $name );
		return is_string( $value ) && '' !== $value ? $value : null;
	}

	/**
	 * Add a settings error once (WordPress may sanitize the same value twice).
	 *
	 * @param string $code    Error code.
	 * @param string $message Plain text; escaped here (settings_errors() prints it as HTML).
	 * @return void
	 */
	private static function error( $code, $message ) {
		if ( ! function_exists( 'add_settings_error' ) ) {
			return;
		}
		foreach ( get_settings_errors( self::OPTION ) as $existing ) {
			if ( $existing['code'] === $code ) {
				return;
			}
		}
		add_settings_error( self::OPTION, $code, esc_html( $message ), 'error' );
	}
}
